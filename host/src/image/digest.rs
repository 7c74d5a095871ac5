//! Content digests (`sha256:<hex>`), and readers/writers that compute one
//! while data streams through them.

use sha2::Digest as _;
use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

/// A content digest: `algorithm:hex`. Only `sha256` and `sha512` are
/// accepted, with lower-case hex of the right length, as the OCI image spec
/// requires of registered algorithms.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: &'static str,
    hex: String,
}

/// A string that is not a valid digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest {text:?}: {reason}")]
pub struct DigestError {
    text: String,
    reason: &'static str,
}

impl Digest {
    /// The SHA-256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(bytes);
        h.finish()
    }

    /// `sha256` or `sha512`.
    pub fn algorithm(&self) -> &'static str {
        self.algorithm
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// A short form for logs: the first 12 hex digits.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(text: &str) -> Result<Self, DigestError> {
        let err = |reason| DigestError {
            text: text.to_string(),
            reason,
        };
        let (alg, hex) = text
            .split_once(':')
            .ok_or_else(|| err("expected <algorithm>:<hex>"))?;
        let (algorithm, len) = match alg {
            "sha256" => ("sha256", 64),
            "sha512" => ("sha512", 128),
            _ => return Err(err("expected algorithm sha256 or sha512")),
        };
        if hex.len() != len
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(err("expected lower-case hex of the algorithm's length"));
        }
        Ok(Self {
            algorithm,
            hex: hex.to_string(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An incremental SHA-256 that also counts bytes.
#[derive(Clone, Default)]
pub struct Sha256 {
    inner: sha2::Sha256,
    len: u64,
}

impl Sha256 {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was hashed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest.
    pub fn finish(self) -> Digest {
        Digest {
            algorithm: "sha256",
            hex: hex::encode(self.inner.finalize()),
        }
    }
}

/// A writer that hashes (SHA-256) and counts what passes through.
pub struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hash: Sha256::new(),
        }
    }

    /// The wrapped writer, the digest and the byte count of what was written.
    pub fn finish(self) -> (W, Digest, u64) {
        let len = self.hash.len();
        (self.inner, self.hash.finish(), len)
    }

    /// The wrapped writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes (SHA-256) and counts what passes through.
pub struct HashingReader<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hash: Sha256::new(),
        }
    }

    /// The digest and byte count of what was read so far.
    pub fn finish(self) -> (Digest, u64) {
        let len = self.hash.len();
        (self.hash.finish(), len)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_prints() {
        let d: Digest = EMPTY.parse().unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(Digest::sha256_of(b""), d);
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!(
            "md5:d41d8cd98f00b204e9800998ecf8427e"
                .parse::<Digest>()
                .is_err()
        );
        assert!(EMPTY.to_uppercase().parse::<Digest>().is_err());
    }

    #[test]
    fn hashing_reader_and_writer_agree() {
        let data = b"hello kiln".repeat(1000);
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(&data).unwrap();
        let (out, d1, n1) = w.finish();
        let mut r = HashingReader::new(&out[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        let (d2, n2) = r.finish();
        assert_eq!((d1.clone(), n1), (d2, n2));
        assert_eq!(d1, Digest::sha256_of(&data));
    }
}
