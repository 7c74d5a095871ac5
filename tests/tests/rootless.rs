//! kiln run as an ordinary user: no root, no capabilities. RUN steps get a
//! user namespace (the caller's uid mapped to 0); the image is still
//! correct. Runs only where the tests are root (to drop to uid 65534 with
//! setpriv) and setpriv exists.

use kiln_tests::images::push_busybox;
use kiln_tests::registry::Registry;
use kiln_tests::tools::{self, require};
use kiln_tests::{kiln_bin, run_program};
use std::os::unix::fs::PermissionsExt as _;

#[test]
fn an_ordinary_user_builds_with_run_and_copy() {
    if !require(&["docker-registry", "skopeo", "umoci", "busybox", "setpriv"]) || !tools::is_root()
    {
        return;
    }
    let reg = Registry::start_plain();
    push_busybox(&reg, "base/busybox:1");
    // Everything the user touches lives in a directory it owns.
    let dir = std::env::temp_dir().join(format!("kiln-rootless-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("ctx")).unwrap();
    std::fs::write(
        dir.join("ctx/Dockerfile"),
        format!(
            "FROM {}\nCOPY note.txt /opt/note.txt\nRUN id -u > /opt/uid && echo ran > /opt/ran\n",
            reg.image_ref("base/busybox:1")
        ),
    )
    .unwrap();
    std::fs::write(dir.join("ctx/note.txt"), "from the context\n").unwrap();
    for p in tools::walk(&dir).into_iter().chain([dir.clone()]) {
        rustix::fs::chown(
            &p,
            Some(rustix::fs::Uid::from_raw(65534)),
            Some(rustix::fs::Gid::from_raw(65534)),
        )
        .unwrap();
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let layout = dir.join("layout");
    let kiln = kiln_bin();
    let host = reg.host();
    let ctx = dir.join("ctx");
    let args = [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
        kiln.to_str().unwrap(),
        "build",
        "--context",
        ctx.to_str().unwrap(),
        "--no-push",
        "--insecure-registry",
        &host,
        "--oci-layout-path",
        layout.to_str().unwrap(),
        "--destination",
        "local/rootless:t",
    ];
    let store = dir.join("store").display().to_string();
    let tmp = dir.display().to_string();
    let home = dir.display().to_string();
    let r = run_program(
        std::path::Path::new("/usr/bin/setpriv"),
        &args,
        &[
            ("KILN_STORE_DIR", &store),
            ("TMPDIR", &tmp),
            ("HOME", &home),
            ("DOCKER_CONFIG", &tmp),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("RUN isolation: namespaces"),
        "{}",
        r.stderr
    );
    let rootfs = tools::umoci_unpack(&layout, "t", &dir.join("unpacked"));
    assert_eq!(
        std::fs::read_to_string(rootfs.join("opt/note.txt")).unwrap(),
        "from the context\n"
    );
    // Inside the step the user is root of its own namespace.
    assert_eq!(
        std::fs::read_to_string(rootfs.join("opt/uid")).unwrap(),
        "0\n"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("opt/ran")).unwrap(),
        "ran\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
