//! ADD's archive detection: is a local file a tar, plain or compressed?
//!
//! As BuildKit (`isArchivePath`), the compression is recognized by its magic
//! bytes, never by the file name, and the file is an archive only when what
//! comes out of the decompressor starts with a valid tar header (an empty
//! or all-zero tar is not an archive: it is copied as a file).

use std::io::{self, Read, Seek, SeekFrom};

/// Compression recognized by magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Plain,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

/// The compression of a stream starting with `head`.
pub(super) fn detect(head: &[u8]) -> Format {
    if head.starts_with(&[0x1f, 0x8b, 0x08]) {
        Format::Gzip
    } else if head.starts_with(b"BZh") {
        Format::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Format::Xz
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Format::Zstd
    } else {
        Format::Plain
    }
}

/// A reader that decompresses `r` as `format`.
pub(super) fn decoder<'a>(format: Format, r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let r = io::BufReader::with_capacity(64 * 1024, r);
    Ok(match format {
        Format::Plain => Box::new(r),
        Format::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Format::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(r)),
        Format::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(r)),
        Format::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
    })
}

/// Whether `block` is a valid tar header: a non-zero block whose checksum
/// (unsigned or signed sum, as Go's `archive/tar` accepts) matches.
pub(super) fn is_tar_header(block: &[u8]) -> bool {
    if block.len() < 512 || block[..512].iter().all(|&b| b == 0) {
        return false;
    }
    let field = &block[148..156];
    let text: String = field
        .iter()
        .map(|&b| b as char)
        .filter(|c| !matches!(c, ' ' | '\0'))
        .collect();
    let Ok(want) = i64::from_str_radix(&text, 8) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, &b) in block[..512].iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += i64::from(b);
        signed += i64::from(b as i8);
    }
    want == unsigned || want == signed
}

/// The format of `file` if it is a tar archive (plain or compressed);
/// `None` otherwise. Leaves the file positioned at its start.
pub(super) fn sniff<F: Read + Seek>(file: &mut F) -> io::Result<Option<Format>> {
    let mut head = [0u8; 8];
    let n = read_full(file, &mut head)?;
    let format = detect(&head[..n]);
    file.seek(SeekFrom::Start(0))?;
    let found = {
        let mut block = vec![0u8; 512];
        match decoder(format, &mut *file) {
            // A stream that fails to decompress is not an archive.
            Ok(mut d) => match read_full(&mut d, &mut block) {
                Ok(n) => n == 512 && is_tar_header(&block),
                Err(_) => false,
            },
            Err(_) => false,
        }
    };
    file.seek(SeekFrom::Start(0))?;
    Ok(found.then_some(format))
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes_pick_the_format() {
        assert_eq!(detect(&[0x1f, 0x8b, 0x08, 0]), Format::Gzip);
        assert_eq!(detect(b"BZh91AY"), Format::Bzip2);
        assert_eq!(detect(&[0xfd, b'7', b'z', b'X', b'Z', 0, 0]), Format::Xz);
        assert_eq!(detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Format::Zstd);
        assert_eq!(detect(b"hello"), Format::Plain);
    }

    #[test]
    fn tar_headers_are_checked() {
        let mut h = tar::Header::new_gnu();
        h.set_path("a").unwrap();
        h.set_size(0);
        h.set_cksum();
        assert!(is_tar_header(h.as_bytes()));
        assert!(!is_tar_header(&[0u8; 512]));
        let mut bad = h.as_bytes().to_vec();
        bad[0] = b'b';
        assert!(!is_tar_header(&bad));
    }
}
