//! The harness itself: real registries, base images pushed with skopeo,
//! umoci unpacks and the file-tree walker.

use kiln_tests::Registry;
use kiln_tests::tools::require;

#[test]
fn plain_registry_answers_v2() {
    if !require(&["docker-registry", "curl"]) {
        return;
    }
    let reg = Registry::start_plain();
    let (status, _) = reg.get("/v2/");
    assert_eq!(status, 200, "{}", reg.log());
    assert!(
        reg.log()
            .contains(&format!("listening on 127.0.0.1:{}", reg.port()))
    );
}

#[test]
fn tls_registry_requires_the_password() {
    if !require(&["docker-registry", "curl", "openssl", "htpasswd"]) {
        return;
    }
    let reg = Registry::start_tls_auth("kiln", "s3cret");
    assert_eq!(reg.get("/v2/").0, 200);
    let status = kiln_tests::tools::run_stdout(
        std::process::Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(reg.ca_cert_path().unwrap())
            .arg(format!("{}/v2/", reg.base_url())),
    );
    assert_eq!(status, "401");
}
