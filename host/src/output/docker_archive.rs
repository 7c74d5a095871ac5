//! The docker-archive tarball: what Kaniko's `--tar-path` writes
//! (go-containerregistry's `tarball.MultiWriteToFile`), and what
//! `docker load` and `skopeo copy docker-archive:<path> …` read.
//!
//! Contents, in this order:
//!
//! - the config, named `sha256:<hex>` (the config digest);
//! - each distinct layer blob as stored (compressed), named
//!   `<hex>.tar.gz` after the blob digest whatever its compression, as
//!   go-containerregistry names them; readers sniff the compression;
//! - `manifest.json`: `[{"Config": …, "RepoTags": […], "Layers": […]}]`.
//!
//! Entries are plain files, mode 0644, owned by root, mtime 0, so the same
//! image and tags give the same archive. Non-distributable ("foreign")
//! layers would need `LayerSources`; kiln writes none.

use super::atomic::{OutputFile, io_err};
use super::{ImageBlobs, OutputError, open_layer};
use crate::store::BlobStore;
use std::io::{self, Read};
use std::path::Path;

#[derive(serde::Serialize)]
struct ArchiveManifest<'a> {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: &'a [String],
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Writes `image` as a docker-archive tarball at `path`, tagged with
/// `repo_tags` (see [`docker_archive_repo_tags`](super::docker_archive_repo_tags)
/// for Kaniko's tags).
///
/// The parent directory must exist (as with Kaniko). An existing file at
/// `path` is replaced, atomically: the archive is written beside it and
/// renamed over it once complete, so on error `path` is as it was. A
/// symlink at `path` is followed; a destination that is not a regular file
/// (`/dev/stdout`, a pipe) or cannot be replaced is written in place (see
/// the module docs).
pub fn write_docker_archive(
    path: &Path,
    image: &ImageBlobs,
    store: &BlobStore,
    repo_tags: &[String],
) -> Result<(), OutputError> {
    image.verify()?;
    let config_name = image.config_digest.to_string();
    let layer_names: Vec<String> = image
        .layers
        .iter()
        .map(|l| format!("{}.tar.gz", l.digest.hex()))
        .collect();
    let manifest = serde_json::to_vec(&[ArchiveManifest {
        config: config_name.clone(),
        repo_tags,
        layers: layer_names.clone(),
    }])
    .map_err(|source| OutputError::Json {
        what: "the docker-archive manifest.json",
        source,
    })?;

    let mut tmp = OutputFile::create(path, 0o666)?;
    let tmp_path = tmp.path().to_path_buf();
    {
        let mut tar = tar::Builder::new(&mut tmp);
        let mut append = |name: &str, size: u64, data: &mut dyn Read| -> Result<(), OutputError> {
            append_file(&mut tar, name, size, data).map_err(io_err("write", &tmp_path))
        };
        append(
            &config_name,
            image.config.len() as u64,
            &mut &image.config[..],
        )?;
        let mut written: Vec<&str> = Vec::new();
        for (layer, name) in image.layers.iter().zip(&layer_names) {
            if written.contains(&name.as_str()) {
                continue;
            }
            let blob = open_layer(store, layer)?;
            append(
                name,
                layer.size,
                &mut io::BufReader::with_capacity(1 << 20, blob),
            )?;
            written.push(name);
        }
        append("manifest.json", manifest.len() as u64, &mut &manifest[..])?;
        tar.into_inner().map_err(io_err("write", &tmp_path))?;
    }
    tmp.commit()?;
    tracing::debug!(path = %path.display(), image = %image.manifest_digest, "docker archive written");
    Ok(())
}

/// Appends a regular file, failing if `data` ends before `size` bytes.
fn append_file<W: io::Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    size: u64,
    data: &mut dyn Read,
) -> io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_path(name)?;
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(size);
    header.set_cksum();
    let mut counted = Counted {
        inner: data.take(size),
        n: 0,
    };
    tar.append(&header, &mut counted)?;
    if counted.n != size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{name} ended after {} of {size} bytes", counted.n),
        ));
    }
    Ok(())
}

struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}
