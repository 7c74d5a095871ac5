//! Kaniko's digest files, and the destination names they (and the
//! docker-archive's `RepoTags`) are made of.
//!
//! Kaniko parses each `--destination` with go-containerregistry's
//! `name.NewTag` (weak validation) and writes:
//!
//! - `--digest-file`: the image digest, `sha256:<hex>`, no newline;
//! - `--image-name-with-digest-file`: `<registry>/<repository>@<digest>\n`
//!   per destination;
//! - `--image-name-tag-with-digest-file`:
//!   `<registry>/<repository>:<tag>@<digest>\n` per destination.
//!
//! Names are normalized as go-containerregistry does: Docker Hub is
//! `index.docker.io` (also for `docker.io`), a one-part Hub repository gets
//! `library/`, a missing tag is `latest`. The first part is a registry only
//! if it has a `.` or `:` (so `localhost/x` is the Hub repository
//! `localhost/x`, as in Kaniko).
//!
//! One Kaniko quirk is not copied: when both name files are asked for,
//! Kaniko writes `name:tag@digest` lines into both; kiln writes each file in
//! its own format.

use super::OutputError;
use super::atomic::{io_err, parent_of, write_output_file};
use crate::image::Digest;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

/// The destination Kaniko names the image in a docker-archive written with
/// `--no-push` and no `--destination`.
pub const DUMMY_DESTINATION: &str = "docker.io/unset-repo/unset-image-name";

const DEFAULT_REGISTRY: &str = "index.docker.io";
const DEFAULT_TAG: &str = "latest";
const TAG_CHARS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.";
const REPOSITORY_CHARS: &str = "abcdefghijklmnopqrstuvwxyz0123456789_-./";

/// A destination as go-containerregistry's `name.NewTag` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Destination {
    /// The text given.
    original: String,
    /// `registry/repository`, normalized.
    name: String,
    /// The tag (`latest` when none was given).
    tag: String,
}

impl Destination {
    pub(super) fn parse(text: &str) -> Result<Self, OutputError> {
        let err = |reason| OutputError::Destination {
            destination: text.to_string(),
            reason,
        };
        let (base, tag) = match text.rsplit_once(':') {
            Some((base, tag)) if !tag.contains('/') => {
                if tag.is_empty() {
                    return Err(err("a tag name must follow the colon"));
                }
                if tag.len() > 128 || !tag.chars().all(|c| TAG_CHARS.contains(c)) {
                    return Err(err(
                        "a tag has 1 to 128 letters, digits, '_', '-' or '.' (digests are not accepted)",
                    ));
                }
                (base, tag)
            }
            _ => (text, DEFAULT_TAG),
        };
        if base.is_empty() {
            return Err(err("a repository name must be given"));
        }
        let (registry, repository) = match base.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) => (first, rest),
            _ => ("", base),
        };
        let check_repository = |repo: &str| {
            if !(2..=255).contains(&repo.len())
                || !repo.chars().all(|c| REPOSITORY_CHARS.contains(c))
            {
                Err(err(
                    "a repository has 2 to 255 lower-case letters, digits, '_', '-', '.' or '/'",
                ))
            } else {
                Ok(())
            }
        };
        check_repository(repository)?;
        if registry.contains(|c: char| !(c.is_ascii_alphanumeric() || "-.:[]".contains(c))) {
            return Err(err("a registry is a host name with an optional port"));
        }
        let registry = match registry {
            "" | "docker.io" => DEFAULT_REGISTRY,
            r => r,
        };
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            let full = format!("library/{repository}");
            check_repository(&full)?;
            full
        } else {
            repository.to_string()
        };
        Ok(Self {
            original: text.to_string(),
            name: format!("{registry}/{repository}"),
            tag: tag.to_string(),
        })
    }

    /// `registry/repository@digest`.
    pub(super) fn name_with_digest(&self, digest: &Digest) -> String {
        format!("{}@{digest}", self.name)
    }

    /// `registry/repository:tag@digest`.
    pub(super) fn name_tag_with_digest(&self, digest: &Digest) -> String {
        format!("{}:{}@{digest}", self.name, self.tag)
    }

    /// The `RepoTags` entry: the destination as given, with `:latest`
    /// appended when it named no tag (go-containerregistry's tarball writer).
    pub(super) fn repo_tag(&self) -> String {
        if self.tag == DEFAULT_TAG && !self.original.ends_with(":latest") {
            format!("{}:{DEFAULT_TAG}", self.original)
        } else {
            self.original.clone()
        }
    }
}

/// The docker-archive `RepoTags` for `destinations`, as Kaniko writes
/// them: each destination as given (`:latest` added when untagged),
/// duplicates dropped; [`DUMMY_DESTINATION`] when there is none.
pub fn docker_archive_repo_tags(destinations: &[String]) -> Result<Vec<String>, OutputError> {
    if destinations.is_empty() {
        return Ok(vec![format!("{DUMMY_DESTINATION}:{DEFAULT_TAG}")]);
    }
    let mut tags: Vec<String> = Vec::new();
    for d in destinations {
        let tag = Destination::parse(d)?.repo_tag();
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    Ok(tags)
}

/// Writes Kaniko's digest files for the image `digest` pushed to
/// `destinations` (each file only when its path is given; see the module
/// docs for the formats). Missing parent directories are created (mode
/// 0700, as Kaniko does); files get mode 0644. Each file is written
/// atomically.
///
/// All destinations are parsed before anything is written. Name files need
/// at least one destination.
pub fn write_digest_files(
    digest_file: Option<&Path>,
    name_with_digest_file: Option<&Path>,
    name_tag_with_digest_file: Option<&Path>,
    destinations: &[String],
    digest: &Digest,
) -> Result<(), OutputError> {
    let flags = [
        ("--digest-file", digest_file),
        ("--image-name-with-digest-file", name_with_digest_file),
        (
            "--image-name-tag-with-digest-file",
            name_tag_with_digest_file,
        ),
    ];
    for (flag, path) in flags {
        if let Some(path) = path {
            if path.as_os_str().as_encoded_bytes().starts_with(b"https://") {
                return Err(OutputError::UrlNotSupported { flag });
            }
            if flag != "--digest-file" && destinations.is_empty() {
                return Err(OutputError::NoDestinations { flag });
            }
        }
    }
    let parsed = destinations
        .iter()
        .map(|d| Destination::parse(d))
        .collect::<Result<Vec<_>, _>>()?;
    let lines = |f: fn(&Destination, &Digest) -> String| {
        parsed
            .iter()
            .map(|d| f(d, digest) + "\n")
            .collect::<String>()
    };
    if let Some(path) = digest_file {
        write_digest_file(path, digest.to_string().as_bytes())?;
    }
    if let Some(path) = name_with_digest_file {
        write_digest_file(path, lines(Destination::name_with_digest).as_bytes())?;
    }
    if let Some(path) = name_tag_with_digest_file {
        write_digest_file(path, lines(Destination::name_tag_with_digest).as_bytes())?;
    }
    Ok(())
}

fn write_digest_file(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let parent = parent_of(path);
    if !parent.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(io_err("create directory", parent))?;
    }
    write_output_file(path, 0o644, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(s: &str) -> Destination {
        Destination::parse(s).unwrap()
    }

    #[test]
    fn names_normalize_like_go_containerregistry() {
        let d: Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            .parse()
            .unwrap();
        let cases = [
            ("ubuntu", "index.docker.io/library/ubuntu", "latest"),
            (
                "docker.io/ubuntu:22.04",
                "index.docker.io/library/ubuntu",
                "22.04",
            ),
            ("user/app:v1", "index.docker.io/user/app", "v1"),
            ("localhost/app", "index.docker.io/localhost/app", "latest"),
            ("localhost:5000/app:dev", "localhost:5000/app", "dev"),
            ("gcr.io/proj/img", "gcr.io/proj/img", "latest"),
            (
                "registry.example.com:443/a/b/c:T_1",
                "registry.example.com:443/a/b/c",
                "T_1",
            ),
        ];
        for (input, name, tag) in cases {
            let p = dest(input);
            assert_eq!(p.name_with_digest(&d), format!("{name}@{d}"), "{input}");
            assert_eq!(
                p.name_tag_with_digest(&d),
                format!("{name}:{tag}@{d}"),
                "{input}"
            );
        }
        for bad in [
            "",
            "Upper/case",
            "app:",
            "a",
            "app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "app:bad/tag:x!",
        ] {
            assert!(Destination::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn repo_tags() {
        assert_eq!(
            docker_archive_repo_tags(&[]).unwrap(),
            ["docker.io/unset-repo/unset-image-name:latest"]
        );
        let tags = docker_archive_repo_tags(&[
            "ubuntu".into(),
            "ubuntu".into(),
            "gcr.io/p/i:latest".into(),
            "localhost:5000/app:v2".into(),
        ])
        .unwrap();
        assert_eq!(
            tags,
            [
                "ubuntu:latest",
                "gcr.io/p/i:latest",
                "localhost:5000/app:v2"
            ]
        );
    }
}
