//! The OCI image layout: what Kaniko's `--oci-layout-path` writes
//! (go-containerregistry's `layout.Write(path, empty.Index)` then
//! `AppendImage`), and what `skopeo … oci:<path>` and `umoci` read.
//!
//! ```text
//! <path>/oci-layout      {"imageLayoutVersion":"1.0.0"}
//! <path>/index.json      one manifest descriptor (+ ref.name annotation when given)
//! <path>/blobs/sha256/   manifest, config, layers
//! ```

use super::atomic::{TempDir, TempFile, io_err, parent_of, sync_dir, write_file};
use super::{ImageBlobs, OutputError, open_layer};
use crate::image::{Digest, media};
use crate::store::BlobStore;
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// The annotation naming a manifest in an index (`oci:<path>:<ref>`,
/// `umoci --image <path>:<ref>`).
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Index<'a> {
    schema_version: u32,
    media_type: &'static str,
    manifests: [Descriptor<'a>; 1],
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor<'a> {
    media_type: &'a str,
    size: u64,
    digest: &'a Digest,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<&'static str, &'a str>,
}

/// Writes `image` as an OCI image layout at `path`, its manifest named
/// `ref_name` in `index.json` when given (Kaniko names none; `umoci` and
/// `oci:<path>:<ref>` select images by this name).
///
/// - `path` missing: the layout is built in `<path>.tmp-<pid>-<n>` beside
///   it and renamed into place when complete (parents are created, as
///   Kaniko's `layout.Write` does).
/// - `path` an existing directory: updated as Kaniko updates it: blobs are
///   added (each written beside its final name and renamed; blobs already
///   there with the right size are kept), `oci-layout` is rewritten, and
///   `index.json` is replaced by a one-manifest index, last. Kaniko does not
///   append to an existing index, and neither does kiln; blobs of images the
///   old index named stay. On error the old `index.json` is untouched;
///   complete blobs written before the error may remain (unreferenced).
/// - `path` anything else: an error.
pub fn write_oci_layout(
    path: &Path,
    image: &ImageBlobs,
    store: &BlobStore,
    ref_name: Option<&str>,
) -> Result<(), OutputError> {
    image.verify()?;
    if let Some(name) = ref_name
        && !valid_ref_name(name)
    {
        return Err(OutputError::RefName {
            name: name.to_string(),
        });
    }
    let index = index_json(image, ref_name)?;
    match fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = parent_of(path);
            fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
            let tmp = TempDir::beside(path)?;
            let root = tmp.path();
            let blobs = root.join("blobs/sha256");
            fs::create_dir_all(&blobs).map_err(io_err("create directory", &blobs))?;
            write_blobs(&blobs, image, store)?;
            sync_dir(&blobs)?;
            sync_dir(&root.join("blobs"))?;
            write_file(&root.join("oci-layout"), 0o644, OCI_LAYOUT)?;
            write_file(&root.join("index.json"), 0o644, &index)?;
            tmp.commit(path)?;
        }
        Err(source) => {
            return Err(OutputError::Io {
                action: "inspect",
                path: path.to_path_buf(),
                source,
            });
        }
        Ok(m) if m.is_dir() => {
            let blobs = path.join("blobs/sha256");
            fs::create_dir_all(&blobs).map_err(io_err("create directory", &blobs))?;
            write_blobs(&blobs, image, store)?;
            sync_dir(&blobs)?;
            write_file(&path.join("oci-layout"), 0o644, OCI_LAYOUT)?;
            write_file(&path.join("index.json"), 0o644, &index)?;
        }
        Ok(_) => {
            return Err(OutputError::NotADirectory {
                path: path.to_path_buf(),
            });
        }
    }
    tracing::debug!(path = %path.display(), image = %image.manifest_digest, "oci layout written");
    Ok(())
}

fn index_json(image: &ImageBlobs, ref_name: Option<&str>) -> Result<Vec<u8>, OutputError> {
    let index = Index {
        schema_version: 2,
        media_type: media::OCI_INDEX,
        manifests: [Descriptor {
            media_type: &image.manifest_media_type,
            size: image.manifest.len() as u64,
            digest: &image.manifest_digest,
            annotations: ref_name
                .map(|n| BTreeMap::from([(REF_NAME_ANNOTATION, n)]))
                .unwrap_or_default(),
        }],
    };
    serde_json::to_vec(&index).map_err(|source| OutputError::Json {
        what: "the oci layout index.json",
        source,
    })
}

/// Writes layers, config and manifest into `blobs` (a `blobs/sha256`
/// directory), each atomically, skipping blobs already there with the
/// right size.
fn write_blobs(blobs: &Path, image: &ImageBlobs, store: &BlobStore) -> Result<(), OutputError> {
    let present = |digest: &Digest, size: u64| {
        fs::metadata(blobs.join(digest.hex())).is_ok_and(|m| m.is_file() && m.len() == size)
    };
    for layer in &image.layers {
        if present(&layer.digest, layer.size) {
            continue;
        }
        let mut blob = open_layer(store, layer)?;
        let dest = blobs.join(layer.digest.hex());
        let mut tmp = TempFile::beside(&dest, 0o644)?;
        let tmp_path = tmp.path().to_path_buf();
        let copied = io::copy(&mut blob, tmp.writer()).map_err(io_err("write", &tmp_path))?;
        if copied != layer.size {
            return Err(OutputError::BlobSize {
                digest: layer.digest.clone(),
                expected: layer.size,
                actual: copied,
            });
        }
        tmp.commit(&dest)?;
    }
    for (bytes, digest) in [
        (&image.config, &image.config_digest),
        (&image.manifest, &image.manifest_digest),
    ] {
        if !present(digest, bytes.len() as u64) {
            let dest = blobs.join(digest.hex());
            let mut tmp = TempFile::beside(&dest, 0o644)?;
            let tmp_path = tmp.path().to_path_buf();
            tmp.write_all(bytes).map_err(io_err("write", &tmp_path))?;
            tmp.commit(&dest)?;
        }
    }
    Ok(())
}

/// The image spec's grammar for `org.opencontainers.image.ref.name`:
/// components of letters and digits, joined by `/`, with separators
/// `-._:@+` (or `--`) inside a component.
fn valid_ref_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('/').all(|component| {
            let bytes = component.as_bytes();
            let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
                return false;
            };
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._:@+".contains(b))
                && bytes.windows(2).all(|w| {
                    let sep = |b: u8| !b.is_ascii_alphanumeric();
                    !(sep(w[0]) && sep(w[1])) || w == b"--"
                })
        })
}

#[cfg(test)]
mod tests {
    use super::valid_ref_name;

    #[test]
    fn ref_names() {
        for ok in [
            "latest",
            "v1.0",
            "a/b",
            "example.com/app:v1",
            "x--y",
            "sha256@a+b",
        ] {
            assert!(valid_ref_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a//b", "a..b", "with space", "/a", "a/"] {
            assert!(!valid_ref_name(bad), "{bad}");
        }
    }
}
