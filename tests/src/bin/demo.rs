//! The README's main job (`make demo`): start a local registry, put a
//! busybox base image in it, and let kiln build, push and deliver the
//! examples; then show the pushed image with `skopeo inspect`.
//!
//! Uses the release build of kiln (`make demo` builds it first).

#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "printing what was built is the demo's purpose"
)]
use kiln_tests::images::push_busybox;
use kiln_tests::registry::Registry;
use kiln_tests::tools::{Access, require, skopeo_inspect, skopeo_inspect_config};
use kiln_tests::{kiln_bin, run_program, target_dir, workspace};
use std::process::ExitCode;

fn main() -> ExitCode {
    if !require(&["docker-registry", "skopeo", "busybox"]) {
        eprintln!("demo: run scripts/setup.sh first");
        return ExitCode::FAILURE;
    }
    let kiln = kiln_bin();
    let out = target_dir().join("demo");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("creating target/demo");
    let store = out.join("store");
    let store = store.to_str().expect("UTF-8 path");
    let env = [("KILN_STORE_DIR", store)];

    // Every example's plan, as `--dry-run` prints it.
    for example in ["hello", "multi-target", "metadata"] {
        let ctx = format!("examples/{example}");
        let dockerfile = format!("{ctx}/Dockerfile");
        println!("== kiln build --dry-run --context {ctx} --dockerfile {dockerfile}");
        let r = run_program(
            &kiln,
            &[
                "build",
                "--dry-run",
                "--context",
                &ctx,
                "--dockerfile",
                &dockerfile,
            ],
            &env,
        );
        print!("{}", r.stdout);
        eprint!("{}", r.stderr);
        if r.code != 0 {
            return ExitCode::FAILURE;
        }
    }

    let registry = Registry::start_plain();
    let host = registry.host();
    println!(
        "\n== local registry at {host}; pushing a busybox base image as {host}/library/busybox:1.36"
    );
    push_busybox(&registry, "library/busybox:1.36");

    let base = registry.image_ref("library/busybox:1.36");
    let dest = registry.image_ref("demo/metadata:1");
    let tar = out.join("metadata.tar");
    let digest_file = out.join("metadata.digest");
    let args = [
        "build",
        "--context",
        "examples/metadata",
        "--dockerfile",
        "examples/metadata/Dockerfile",
        "--build-arg",
        &format!("BASE={base}"),
        "--destination",
        &dest,
        "--insecure-registry",
        &host,
        "--label",
        "org.opencontainers.image.revision=demo",
        "--tar-path",
        tar.to_str().expect("UTF-8 path"),
        "--digest-file",
        digest_file.to_str().expect("UTF-8 path"),
    ];
    println!("\n== kiln {}", args.join(" "));
    let r = run_program(&kiln, &args, &env);
    eprint!("{}", r.stderr);
    if r.code != 0 {
        eprintln!("demo: kiln build failed with exit code {}", r.code);
        return ExitCode::FAILURE;
    }
    // The multi-stage example: RUN with cache and secret mounts, heredocs,
    // COPY --from, pushed to the local registry.
    let secret = out.join("token");
    std::fs::write(&secret, "demo-token-never-in-a-layer\n").expect("writing the demo secret");
    let hello = registry.image_ref("demo/hello:1");
    let args = [
        "build",
        "--context",
        "examples/hello",
        "--dockerfile",
        "examples/hello/Dockerfile",
        "--build-arg",
        &format!("BASE={base}"),
        "--destination",
        &hello,
        "--insecure-registry",
        &host,
        "--secret",
        &format!("id=token,src={}", secret.display()),
    ];
    println!("\n== kiln {}", args.join(" "));
    let r = run_program(&kiln, &args, &env);
    eprint!("{}", r.stderr);
    if r.code != 0 {
        eprintln!("demo: kiln build failed with exit code {}", r.code);
        return ExitCode::FAILURE;
    }

    let access = Access::default();
    println!("\n== skopeo inspect docker://{hello}");
    println!(
        "{:#}",
        skopeo_inspect(&format!("docker://{hello}"), &access)
    );
    let image = format!("docker://{dest}");
    println!("\n== skopeo inspect {image}");
    println!("{:#}", skopeo_inspect(&image, &access));
    println!("\n== skopeo inspect --config {image} (config section)");
    println!("{:#}", skopeo_inspect_config(&image, &access)["config"]);
    println!(
        "\n== digest file {}: {}\n== docker-archive written to {}",
        digest_file.display(),
        std::fs::read_to_string(&digest_file).unwrap_or_default(),
        tar.strip_prefix(workspace()).unwrap_or(&tar).display()
    );
    ExitCode::SUCCESS
}
