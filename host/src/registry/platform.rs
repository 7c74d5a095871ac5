//! Choosing the manifest for a platform from an image index, with
//! containerd's `platforms.Only` rules (what BuildKit uses): the exact
//! platform first, then the ones it can run, in order of preference:
//! `amd64/vN` also runs `amd64/v(N-1)`... and `386`; `arm/vN` runs `arm/v(N-1)`
//! down to `v5`; `arm64` (variant `v8` by default) runs lower `arm64`
//! minor variants and then `arm/v8`..`arm/v5`. Platforms compare after
//! normalisation (`arm64/v8` is `arm64`, `arm` is `arm/v7`).

use crate::image::Platform;
use oci_spec::image::Descriptor;

/// The platforms `p` can run, best first (containerd's `platformVector`).
pub(crate) fn compatible_platforms(p: &Platform) -> Vec<Platform> {
    let p = p.clone().normalize();
    let mut out = vec![p.clone()];
    let with = |arch: &str, variant: Option<String>| Platform {
        os: p.os.clone(),
        architecture: arch.to_owned(),
        variant,
    };
    let version = |v: &str| v.strip_prefix('v').unwrap_or(v).parse::<u32>().ok();
    match p.architecture.as_str() {
        "amd64" => {
            if let Some(n) = p.variant.as_deref().and_then(version) {
                for v in (1..n).rev() {
                    out.push(with("amd64", Some(format!("v{v}"))));
                }
            }
            out.push(with("386", None));
        }
        "arm" => {
            if let Some(n) = p.variant.as_deref().and_then(version) {
                for v in (5..n).rev() {
                    out.push(with("arm", Some(format!("v{v}"))));
                }
            }
        }
        "arm64" => {
            let variant = p.variant.clone().unwrap_or_else(|| "v8".to_owned());
            let (major, minor) = match variant.trim_start_matches('v').split_once('.') {
                Some((ma, mi)) => (ma.parse::<u32>().ok(), mi.parse::<u32>().unwrap_or(0)),
                None => (variant.trim_start_matches('v').parse::<u32>().ok(), 0),
            };
            if let Some(mut major) = major.filter(|m| *m >= 8) {
                let mut minor = minor;
                let name = |ma: u32, mi: u32| {
                    if mi == 0 {
                        format!("v{ma}")
                    } else {
                        format!("v{ma}.{mi}")
                    }
                };
                if major == 9 {
                    for mi in (0..minor).rev() {
                        out.push(with("arm64", Some(name(9, mi))));
                    }
                    // v9.x diverged from v8.(x+5).
                    minor += 5;
                    major = 8;
                    out.push(with("arm64", Some(name(8, minor))));
                }
                for mi in (0..minor).rev() {
                    out.push(with("arm64", Some(name(major, mi))));
                }
            }
            let arm_variant = if variant.starts_with("v8.") || variant.starts_with("v9.") {
                "v8".to_owned()
            } else {
                variant
            };
            out.extend(compatible_platforms(&with("arm", Some(arm_variant))));
        }
        _ => {}
    }
    out.into_iter().map(Platform::normalize).collect()
}

/// The platform an index entry is for, normalised; `None` without one.
pub(crate) fn descriptor_platform(d: &Descriptor) -> Option<Platform> {
    let p = d.platform().as_ref()?;
    Some(
        Platform {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            variant: p.variant().clone().filter(|v| !v.is_empty()),
        }
        .normalize(),
    )
}

/// Whether an image for `candidate` runs on `wanted`.
pub(crate) fn matches(wanted: &Platform, candidate: &Platform) -> bool {
    let c = candidate.clone().normalize();
    compatible_platforms(wanted).contains(&c)
}

/// The index entry to use for `wanted`: the entry whose platform comes
/// first in [`compatible_platforms`], the first such entry on ties.
pub(crate) fn select<'a>(manifests: &'a [Descriptor], wanted: &Platform) -> Option<&'a Descriptor> {
    let order = compatible_platforms(wanted);
    manifests
        .iter()
        .filter_map(|d| {
            let p = descriptor_platform(d)?;
            let rank = order.iter().position(|o| *o == p)?;
            Some((rank, d))
        })
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::parse_platform;
    use oci_spec::image::ImageIndex;

    /// A Docker manifest list like busybox's.
    const LIST: &str = r#"{
      "schemaVersion": 2,
      "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
      "manifests": [
        {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 528,
         "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
         "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 528,
         "digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222",
         "platform": {"architecture": "arm", "os": "linux", "variant": "v5"}},
        {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 528,
         "digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333",
         "platform": {"architecture": "arm", "os": "linux", "variant": "v6"}},
        {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 528,
         "digest": "sha256:4444444444444444444444444444444444444444444444444444444444444444",
         "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
        {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 528,
         "digest": "sha256:5555555555555555555555555555555555555555555555555555555555555555",
         "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
        {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 528,
         "digest": "sha256:6666666666666666666666666666666666666666666666666666666666666666",
         "platform": {"architecture": "386", "os": "linux"}},
        {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 528,
         "digest": "sha256:7777777777777777777777777777777777777777777777777777777777777777",
         "platform": {"architecture": "s390x", "os": "linux"}}
      ]
    }"#;

    /// An OCI index with an attestation entry and only old arm builds.
    const OCI: &str = r#"{
      "schemaVersion": 2,
      "mediaType": "application/vnd.oci.image.index.v1+json",
      "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1,
         "digest": "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "platform": {"architecture": "unknown", "os": "unknown"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1,
         "digest": "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
         "platform": {"architecture": "arm", "os": "linux", "variant": "v6"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1,
         "digest": "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
         "platform": {"architecture": "arm64", "os": "linux"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1,
         "digest": "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
         "platform": {"architecture": "386", "os": "linux"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1,
         "digest": "sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"}
      ]
    }"#;

    fn pick(index: &str, platform: &str) -> Option<char> {
        let idx: ImageIndex = serde_json::from_str(index).unwrap();
        let p = parse_platform(platform).unwrap();
        select(idx.manifests(), &p).map(|d| d.digest().to_string().chars().nth(7).unwrap())
    }

    #[test]
    fn exact_matches() {
        assert_eq!(pick(LIST, "linux/amd64"), Some('1'));
        assert_eq!(pick(LIST, "linux/arm/v5"), Some('2'));
        assert_eq!(pick(LIST, "linux/arm/v6"), Some('3'));
        assert_eq!(pick(LIST, "linux/arm"), Some('4'));
        assert_eq!(pick(LIST, "linux/386"), Some('6'));
        assert_eq!(pick(LIST, "linux/s390x"), Some('7'));
    }

    #[test]
    fn arm64_variant_defaults() {
        // The index says arm64/v8; the request says arm64 (normalised the same).
        assert_eq!(pick(LIST, "linux/arm64"), Some('5'));
        assert_eq!(pick(LIST, "linux/arm64/v8"), Some('5'));
        assert_eq!(pick(LIST, "linux/aarch64"), Some('5'));
        // The index says arm64 with no variant; v8 asked.
        assert_eq!(pick(OCI, "linux/arm64/v8"), Some('c'));
        // arm64/v9 runs v8.
        assert_eq!(pick(OCI, "linux/arm64/v9"), Some('c'));
    }

    #[test]
    fn compatible_fallbacks() {
        // No arm/v7 in the OCI index: arm/v6 is the next best.
        assert_eq!(pick(OCI, "linux/arm/v7"), Some('b'));
        // No amd64: 386 runs on amd64.
        assert_eq!(pick(OCI, "linux/amd64"), Some('d'));
        // Nothing for ppc64le or windows; the unknown/unknown attestation
        // and the entry without a platform are never chosen.
        assert_eq!(pick(OCI, "linux/ppc64le"), None);
        assert_eq!(pick(LIST, "windows/amd64"), None);
        assert_eq!(pick(OCI, "linux/arm/v5"), None);
    }

    #[test]
    fn vectors() {
        let v = |s: &str| -> Vec<String> {
            compatible_platforms(&parse_platform(s).unwrap())
                .iter()
                .map(|p| p.to_string())
                .collect()
        };
        assert_eq!(v("linux/amd64"), ["linux/amd64", "linux/386"]);
        assert_eq!(
            v("linux/amd64/v3"),
            [
                "linux/amd64/v3",
                "linux/amd64/v2",
                "linux/amd64",
                "linux/386"
            ]
        );
        assert_eq!(
            v("linux/arm64"),
            [
                "linux/arm64",
                "linux/arm/v8",
                "linux/arm/v7",
                "linux/arm/v6",
                "linux/arm/v5"
            ]
        );
        assert_eq!(v("linux/arm/v6"), ["linux/arm/v6", "linux/arm/v5"]);
        assert_eq!(v("linux/riscv64"), ["linux/riscv64"]);
        let m =
            |a: &str, b: &str| matches(&parse_platform(a).unwrap(), &parse_platform(b).unwrap());
        assert!(m("linux/arm64", "linux/arm64/v8"));
        assert!(!m("linux/arm/v6", "linux/arm/v7"));
        assert!(!m("linux/amd64", "linux/arm64"));
    }
}
