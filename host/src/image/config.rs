//! The image config (`application/vnd.oci.image.config.v1+json`, or
//! Docker's `application/vnd.docker.container.image.v1+json`), as registries
//! store it.
//!
//! The types follow the Go structs BuildKit writes (`DockerOCIImage` from
//! `github.com/moby/docker-image-spec`, which embeds the OCI `Image` and adds
//! Docker's `Healthcheck`, `OnBuild` and `Shell` to `config`), with the same
//! `omitempty` rules, so that kiln's JSON looks like BuildKit's:
//!
//! * empty strings, empty lists and maps, `false` and zero durations are left
//!   out; `architecture`, `os`, `config` and `rootfs` are always written;
//!   `rootfs.diff_ids` is `null` when it was absent or `null` (a Go nil
//!   slice), `[]` when it was an empty list;
//! * top-level keys are sorted, because BuildKit's exporter patches the
//!   config through a `map[string]json.RawMessage` before writing it
//!   (`exporter/containerimage/writer.go`, `patchImageConfig`); keys inside
//!   `config` keep the struct order, map keys (`Labels`, `ExposedPorts`,
//!   `Volumes`) are sorted;
//! * durations are integers of nanoseconds (Go's `time.Duration`);
//! * strings are escaped as Go escapes them (`<`, `>`, `&` as `\u003c`...).
//!
//! Fields kiln does not know (Docker's `container_config`, `docker_version`,
//! `config.Hostname`...) are kept in `extra` maps, so a base config read and
//! written again keeps them; BuildKit itself drops them when it builds on a
//! base image, and so does `build::config`.

use super::gojson;
use super::{Digest, Platform, Timestamp};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Why an image config could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid image config JSON")]
pub struct ConfigError {
    #[source]
    source: serde_json::Error,
}

/// An image config: platform, runtime defaults, layer diff IDs, history.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ImageConfig {
    /// `created`.
    #[serde(default)]
    pub created: Option<Timestamp>,
    /// `author` (set by `MAINTAINER`).
    #[serde(default, deserialize_with = "nullable")]
    pub author: String,
    /// `architecture` (Go spelling: `amd64`, `arm64`...).
    #[serde(default, deserialize_with = "nullable")]
    pub architecture: String,
    /// `os`.
    #[serde(default, deserialize_with = "nullable")]
    pub os: String,
    /// `os.version` (Windows).
    #[serde(rename = "os.version", default, deserialize_with = "nullable")]
    pub os_version: String,
    /// `os.features` (Windows).
    #[serde(rename = "os.features", default, deserialize_with = "nullable")]
    pub os_features: Vec<String>,
    /// `variant` (`v7`, `v8`...).
    #[serde(default, deserialize_with = "nullable")]
    pub variant: String,
    /// `config`: the defaults a container runs with.
    #[serde(default, deserialize_with = "nullable")]
    pub config: ContainerConfig,
    /// `rootfs`.
    #[serde(default, deserialize_with = "nullable")]
    pub rootfs: RootFs,
    /// `history`, oldest first.
    #[serde(default, deserialize_with = "nullable")]
    pub history: Vec<History>,
    /// Top-level fields kiln does not model, kept as read.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `config`: what a container of the image runs with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// `User`: `user[:group]`.
    #[serde(
        rename = "User",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub user: String,
    /// `ExposedPorts`: `80/tcp`... (a map to `{}` in JSON).
    #[serde(
        rename = "ExposedPorts",
        default,
        with = "set_as_map",
        skip_serializing_if = "BTreeSet::is_empty"
    )]
    pub exposed_ports: BTreeSet<String>,
    /// `Env`: `KEY=value`, in order.
    #[serde(
        rename = "Env",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<String>,
    /// `Entrypoint`.
    #[serde(
        rename = "Entrypoint",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    #[serde(
        rename = "Cmd",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cmd: Vec<String>,
    /// `Volumes` (a map to `{}` in JSON).
    #[serde(
        rename = "Volumes",
        default,
        with = "set_as_map",
        skip_serializing_if = "BTreeSet::is_empty"
    )]
    pub volumes: BTreeSet<String>,
    /// `WorkingDir`.
    #[serde(
        rename = "WorkingDir",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub working_dir: String,
    /// `Labels`.
    #[serde(
        rename = "Labels",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// `StopSignal`.
    #[serde(
        rename = "StopSignal",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub stop_signal: String,
    /// `ArgsEscaped` (deprecated in the OCI spec; Docker and BuildKit still
    /// write it: `CMD` sets it).
    #[serde(
        rename = "ArgsEscaped",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub args_escaped: bool,
    /// `Healthcheck`.
    #[serde(
        rename = "Healthcheck",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub healthcheck: Option<Healthcheck>,
    /// `OnBuild`: trigger instructions, as written after `ONBUILD`.
    #[serde(
        rename = "OnBuild",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub on_build: Vec<String>,
    /// `Shell`: the shell for shell forms.
    #[serde(
        rename = "Shell",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub shell: Vec<String>,
    /// Fields kiln does not model (`Hostname`, `Tty`, `StopTimeout`...).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `config.Healthcheck`. Durations are nanoseconds; 0 means "the default".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// `Test`: `["NONE"]`, `["CMD", args…]` or `["CMD-SHELL", command]`.
    #[serde(
        rename = "Test",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub test: Vec<String>,
    /// `Interval`.
    #[serde(
        rename = "Interval",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub interval: i64,
    /// `Timeout`.
    #[serde(
        rename = "Timeout",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub timeout: i64,
    /// `StartPeriod`.
    #[serde(
        rename = "StartPeriod",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub start_period: i64,
    /// `StartInterval`.
    #[serde(
        rename = "StartInterval",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub start_interval: i64,
    /// `Retries`.
    #[serde(
        rename = "Retries",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub retries: i64,
}

/// `rootfs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    /// `type`: always `layers`.
    #[serde(rename = "type", default, deserialize_with = "nullable")]
    pub kind: String,
    /// `diff_ids`: digests of the uncompressed layers, bottom first.
    /// `None` is written `null`, as Go writes a nil slice.
    #[serde(default)]
    pub diff_ids: Option<Vec<Digest>>,
}

impl Default for RootFs {
    fn default() -> Self {
        Self {
            kind: "layers".to_owned(),
            diff_ids: None,
        }
    }
}

/// One `history` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// `created`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Timestamp>,
    /// `created_by`: the instruction.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub created_by: String,
    /// `author`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub author: String,
    /// `comment` (BuildKit writes `buildkit.dockerfile.v0`).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub comment: String,
    /// `empty_layer`: whether the step made no layer.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub empty_layer: bool,
    /// Fields kiln does not model.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// `null` reads as the default, as Go's decoder leaves the zero value.
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Go's `map[string]struct{}`: a set written as `{"key":{}}`.
mod set_as_map {
    use super::*;

    pub(super) fn serialize<S: Serializer>(
        set: &BTreeSet<String>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Empty {}
        let mut map = s.serialize_map(Some(set.len()))?;
        for k in set {
            map.serialize_entry(k, &Empty {})?;
        }
        map.end()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeSet<String>, D::Error> {
        struct SetVisitor;
        impl<'de> Visitor<'de> for SetVisitor {
            type Value = BTreeSet<String>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object whose keys are the members")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(BTreeSet::new())
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(BTreeSet::new())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut set = BTreeSet::new();
                while let Some((k, _)) = map.next_entry::<String, IgnoredAny>()? {
                    set.insert(k);
                }
                Ok(set)
            }
        }
        d.deserialize_any(SetVisitor)
    }
}

/// One top-level value, for writing the keys in sorted order.
enum Field<'a> {
    Str(&'a str),
    Strs(&'a [String]),
    Time(&'a Timestamp),
    Config(&'a ContainerConfig),
    RootFs(&'a RootFs),
    History(&'a [History]),
    Value(&'a serde_json::Value),
}

impl Serialize for Field<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Str(v) => v.serialize(s),
            Field::Strs(v) => v.serialize(s),
            Field::Time(v) => v.serialize(s),
            Field::Config(v) => v.serialize(s),
            Field::RootFs(v) => v.serialize(s),
            Field::History(v) => v.serialize(s),
            Field::Value(v) => v.serialize(s),
        }
    }
}

impl Serialize for ImageConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut fields: Vec<(&str, Field<'_>)> = vec![
            ("architecture", Field::Str(&self.architecture)),
            ("os", Field::Str(&self.os)),
            ("config", Field::Config(&self.config)),
            ("rootfs", Field::RootFs(&self.rootfs)),
        ];
        if let Some(t) = &self.created {
            fields.push(("created", Field::Time(t)));
        }
        for (k, v) in [
            ("author", &self.author),
            ("os.version", &self.os_version),
            ("variant", &self.variant),
        ] {
            if !v.is_empty() {
                fields.push((k, Field::Str(v)));
            }
        }
        if !self.os_features.is_empty() {
            fields.push(("os.features", Field::Strs(&self.os_features)));
        }
        if !self.history.is_empty() {
            fields.push(("history", Field::History(&self.history)));
        }
        for (k, v) in &self.extra {
            if !fields.iter().any(|(name, _)| name == k) {
                fields.push((k, Field::Value(v)));
            }
        }
        fields.sort_by(|a, b| a.0.cmp(b.0));
        let mut map = s.serialize_map(Some(fields.len()))?;
        for (k, v) in &fields {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl ImageConfig {
    /// An empty config for `platform`: no layers, no history, nothing in
    /// `config` (see `build::config` for what BuildKit gives `FROM scratch`).
    pub fn for_platform(platform: &Platform) -> Self {
        Self {
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
            variant: platform.variant.clone().unwrap_or_default(),
            ..Self::default()
        }
    }

    /// Reads a config blob.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfigError> {
        serde_json::from_slice(bytes).map_err(|source| ConfigError { source })
    }

    /// The config as Go's `json.Marshal` would write it (compact, sorted
    /// top-level keys, Go escaping). These are the bytes to store and hash.
    pub fn to_bytes(&self) -> Vec<u8> {
        gojson::to_vec(self)
            .expect("an image config always serializes: string keys, no fallible fields")
    }

    /// The digest of [`to_bytes`](Self::to_bytes).
    pub fn digest(&self) -> Digest {
        Digest::sha256_of(&self.to_bytes())
    }

    /// The platform the config names (not normalised).
    pub fn platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: (!self.variant.is_empty()).then(|| self.variant.clone()),
        }
    }

    /// The layer diff IDs, bottom first (empty when there are none).
    pub fn diff_ids(&self) -> &[Digest] {
        self.rootfs.diff_ids.as_deref().unwrap_or(&[])
    }

    /// `config.Env` as `(key, value)` pairs; an entry without `=` has an
    /// empty value.
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        self.config
            .env
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (e.clone(), String::new()),
            })
            .collect()
    }

    /// The value of `key` in `config.Env`, the first entry that names it.
    pub fn env(&self, key: &str) -> Option<&str> {
        self.config
            .env
            .iter()
            .find_map(|e| match e.split_once('=') {
                Some((k, v)) if k == key => Some(v),
                None if e == key => Some(""),
                _ => None,
            })
    }

    /// Number of history entries that made a layer.
    pub fn layer_history_count(&self) -> usize {
        self.history.iter().filter(|h| !h.empty_layer).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config as Docker Hub serves it for an image built by the legacy
    /// Docker builder: Docker media type, `container_config`, nulls,
    /// `docker_version`, `Hostname`..., a base healthcheck and ONBUILD.
    const DOCKER_FIXTURE: &str = include_str!("testdata/docker-config.json");

    #[test]
    fn docker_fixture_round_trips() {
        let c = ImageConfig::from_bytes(DOCKER_FIXTURE.as_bytes()).unwrap();
        assert_eq!(c.architecture, "amd64");
        assert_eq!(c.config.user, "www-data");
        assert_eq!(
            c.config.exposed_ports.iter().collect::<Vec<_>>(),
            ["443/tcp", "80/tcp"]
        );
        assert!(c.config.volumes.is_empty());
        assert_eq!(c.env("NGINX_VERSION"), Some("1.25.3"));
        let hc = c.config.healthcheck.as_ref().unwrap();
        assert_eq!(
            (hc.interval, hc.timeout, hc.retries),
            (30_000_000_000, 5_000_000_000, 3)
        );
        assert_eq!(c.config.on_build, ["COPY . /usr/share/nginx/html"]);
        assert_eq!(c.config.extra["Hostname"], "");
        assert!(c.extra.contains_key("container_config"));
        assert_eq!(c.extra["docker_version"], "20.10.23");
        assert_eq!(c.history.len(), 4);
        assert_eq!(c.layer_history_count(), 2);
        assert_eq!(c.diff_ids().len(), 2);
        assert_eq!(c.history[2].author, "NGINX Docker Maintainers");
        // Written again: sorted top-level keys, struct order in `config`
        // with the unknown fields after, nulls and `false` left out, Go
        // escaping. Read back, it is the same config.
        let bytes = c.to_bytes();
        let again = ImageConfig::from_bytes(&bytes).unwrap();
        assert_eq!(again, c);
        assert_eq!(again.to_bytes(), bytes);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with(r#"{"architecture":"amd64","config":{"User":"www-data","ExposedPorts":{"443/tcp":{},"80/tcp":{}},"Env":["#), "{text}");
        assert!(text.contains(r#""Labels":{"maintainer":"NGINX Docker Maintainers \u003cdocker-maint@nginx.com\u003e"},"StopSignal":"SIGQUIT","ArgsEscaped":true,"Healthcheck":{"Test":["CMD-SHELL","curl -f http://localhost/ || exit 1"],"Interval":30000000000,"Timeout":5000000000,"Retries":3},"OnBuild":["COPY . /usr/share/nginx/html"],"AttachStderr":false,"#), "{text}");
        assert!(text.contains(r##""created":"2023-11-01T05:31:12.345678901Z","docker_version":"20.10.23","history":[{"created":"2023-10-10T23:51:23.061318735Z","created_by":"/bin/sh -c #(nop) ADD file:a1b2c3 in / "},"##), "{text}");
        assert!(text.contains(r#"set -x \u0026\u0026 apt-get"#));
        assert!(text.ends_with(r#""os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000001","sha256:0000000000000000000000000000000000000000000000000000000000000002"]}}"#), "{text}");
        assert!(!text.contains("null"));
    }

    /// A config as BuildKit writes it is written back byte for byte.
    #[test]
    fn buildkit_config_is_byte_identical() {
        let text = r#"{"architecture":"arm64","config":{"User":"app","Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Entrypoint":["/app"],"WorkingDir":"/srv","Labels":{"a":"1"},"ArgsEscaped":true,"Shell":["/bin/bash","-c"]},"created":"2024-01-01T00:00:00Z","history":[{"created":"2024-01-01T00:00:00Z","created_by":"COPY /out /app # buildkit","comment":"buildkit.dockerfile.v0"},{"created":"2024-01-01T00:00:00Z","created_by":"ENTRYPOINT [\"/app\"]","comment":"buildkit.dockerfile.v0","empty_layer":true}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000003"]},"variant":"v8"}"#;
        let c = ImageConfig::from_bytes(text.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(c.to_bytes()).unwrap(), text);
        assert_eq!(c.digest(), Digest::sha256_of(text.as_bytes()));
        assert_eq!(c.platform().to_string(), "linux/arm64/v8");
    }

    #[test]
    fn empty_and_null_diff_ids() {
        let c = ImageConfig::for_platform(&crate::image::parse_platform("linux/arm/v7").unwrap());
        assert_eq!(
            String::from_utf8(c.to_bytes()).unwrap(),
            r#"{"architecture":"arm","config":{},"os":"linux","rootfs":{"type":"layers","diff_ids":null},"variant":"v7"}"#
        );
        let c = ImageConfig::from_bytes(
            br#"{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":[]}}"#,
        )
        .unwrap();
        assert!(
            c.to_bytes()
                .ends_with(br#""rootfs":{"type":"layers","diff_ids":[]}}"#)
        );
        assert!(c.diff_ids().is_empty());
    }

    #[test]
    fn healthcheck_none_and_volumes() {
        let c = ContainerConfig {
            healthcheck: Some(Healthcheck {
                test: vec!["NONE".into()],
                ..Healthcheck::default()
            }),
            volumes: ["/data".to_owned()].into(),
            ..ContainerConfig::default()
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"Volumes":{"/data":{}},"Healthcheck":{"Test":["NONE"]}}"#
        );
    }

    #[test]
    fn rejects_garbage() {
        let e = ImageConfig::from_bytes(b"{\"rootfs\":{\"diff_ids\":[\"md5:x\"]}}").unwrap_err();
        assert_eq!(e.to_string(), "invalid image config JSON");
        assert!(std::error::Error::source(&e).is_some());
    }
}
