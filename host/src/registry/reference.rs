//! Image references with Docker's normalisation.
//!
//! oci-client's [`Reference`] (from oci-spec) already normalises as Docker
//! does (`busybox` is `docker.io/library/busybox:latest`, `name:tag@digest`
//! keeps both and the digest wins when fetching); kiln uses it as is and
//! only adds errors that name the reference.

use super::RegistryError;
use oci_client::Reference;

/// Docker Hub's canonical registry name.
pub(crate) const DOCKER_HUB: &str = "docker.io";

/// Parses an image reference, normalising it as Docker does.
///
/// ```
/// let r = kiln::registry::parse_reference("busybox").unwrap();
/// assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
/// ```
pub fn parse_reference(text: &str) -> Result<Reference, RegistryError> {
    let err = |cause| RegistryError::InvalidReference {
        reference: text.to_owned(),
        cause,
    };
    let r = text.parse::<Reference>().map_err(err)?;
    // Docker requires lowercase repositories; oci-spec lets `UPPER/x`
    // through as a Docker Hub repository.
    if r.repository().chars().any(|c| c.is_ascii_uppercase()) {
        return Err(err(oci_client::ParseError::NameContainsUppercase));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:9c4d1f8b8b3a1d2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d";

    fn norm(s: &str) -> String {
        parse_reference(s).unwrap().to_string()
    }

    #[test]
    fn docker_normalisation() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("library/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            norm("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            norm("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(norm("ghcr.io/org/app:v1"), "ghcr.io/org/app:v1");
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(norm("127.0.0.1:5000/a/b/c:t"), "127.0.0.1:5000/a/b/c:t");
        let r = parse_reference("busybox").unwrap();
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.resolve_registry(), "index.docker.io");
        assert_eq!(r.repository(), "library/busybox");
    }

    #[test]
    fn tags_and_digests() {
        let r = parse_reference(&format!("busybox:1.36@{D}")).unwrap();
        assert_eq!(r.tag(), Some("1.36"));
        assert_eq!(r.digest(), Some(D));
        assert_eq!(r.to_string(), format!("docker.io/library/busybox:1.36@{D}"));
        let r = parse_reference(&format!("r.example:5000/app@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), Some(D));
        let r = parse_reference("app").unwrap();
        assert_eq!(r.tag(), Some("latest"));
    }

    #[test]
    fn errors_name_the_reference() {
        for bad in ["", "Busybox", "a:b:c", "app@sha256:abc", "UPPER/x", "app:"] {
            let e = parse_reference(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }
}
