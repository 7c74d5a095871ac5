//! `COPY`/`ADD --chmod`, after BuildKit's `dispatchCopy`
//! (`dockerfile2llb/convert_copy.go`) and the symbolic-mode parser it uses,
//! `github.com/tonistiigi/dchapes-mode` (a Go port of BSD `setmode(3)`),
//! which fsutil applies with a umask of 0.

use std::fmt;

use super::ValueError;
use super::go::parse_uint;

const IS_UID: u16 = 0o4000;
const IS_GID: u16 = 0o2000;
const IS_TXT: u16 = 0o1000;
const RWXU: u16 = 0o700;
const RWXG: u16 = 0o070;
const RWXO: u16 = 0o007;
const R_ALL: u16 = 0o444;
const W_ALL: u16 = 0o222;
const X_ALL: u16 = 0o111;
const R_USR: u16 = 0o400;
const R_GRP: u16 = 0o040;
const R_OTH: u16 = 0o004;
/// `a`: set-id bits and rwx for everyone, but not the sticky bit.
const STANDARD: u16 = IS_UID | IS_GID | RWXU | RWXG | RWXO;

/// A parsed `--chmod` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    /// An octal mode, at most `0o7777`; replaces the permission, set-id and
    /// sticky bits.
    Octal(u32),
    /// A symbolic mode as in `chmod(1)`, applied per file.
    Symbolic(SymbolicMode),
}

/// A symbolic mode such as `u=rwX,go=rX`, parsed into BSD `setmode`
/// operations.
///
/// Semantics (BuildKit's, i.e. BSD's with a umask of 0):
///
/// * no `who` means `a`, and the umask is **not** applied: `+x` is `a+x`;
/// * `X` adds execute if the file is a directory or any execute bit was set
///   *before* the whole mode is applied; with `-`, `X` clears like `x`;
/// * `s` is ignored when only `o` is named; `t` is ignored when only `o` is
///   named and otherwise sets the sticky bit only (`+rt` sets just the
///   sticky bit, a quirk of `setmode`);
/// * `=` with no `who` clears set-id and rwx bits but keeps the sticky bit;
/// * `u`, `g`, `o` after the operator copy those bits (`g=u`, `go=u-w`);
/// * several operators may follow one `who` (`u+x-w`), clauses are
///   separated by `,`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolicMode {
    text: String,
    ops: Vec<Op>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Set(u16),
    Clear(u16),
    /// Set if the file is a directory or had an execute bit.
    SetIfExec(u16),
    /// Copy the rwx bits of class `from` onto the marked classes.
    Copy {
        from: u8,
        to_u: bool,
        to_g: bool,
        to_o: bool,
        clear: bool,
        set: bool,
    },
}

impl SymbolicMode {
    /// The mode as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Applies the mode to the low 12 bits (`0o7777`) of `mode`.
    fn apply_bits(&self, mode: u16, is_dir: bool) -> u16 {
        let original = mode;
        let mut m = mode;
        for op in &self.ops {
            match *op {
                Op::Set(bits) => m |= bits,
                Op::Clear(bits) => m &= !bits,
                Op::SetIfExec(bits) => {
                    if original & X_ALL != 0 || is_dir {
                        m |= bits;
                    }
                }
                Op::Copy {
                    from,
                    to_u,
                    to_g,
                    to_o,
                    clear,
                    set,
                } => {
                    let value = match from {
                        b'u' => (m & RWXU) >> 6,
                        b'g' => (m & RWXG) >> 3,
                        _ => m & RWXO,
                    };
                    if clear {
                        let clr = if set { 0o7 } else { value };
                        if to_u {
                            m &= !(clr << 6);
                        }
                        if to_g {
                            m &= !(clr << 3);
                        }
                        if to_o {
                            m &= !clr;
                        }
                    }
                    if set {
                        if to_u {
                            m |= value << 6;
                        }
                        if to_g {
                            m |= value << 3;
                        }
                        if to_o {
                            m |= value;
                        }
                    }
                }
            }
        }
        m & 0o7777
    }
}

impl fmt::Display for SymbolicMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Chmod {
    /// The new mode of a copied file or directory whose mode is
    /// `current_mode`. Bits above `0o7777` (the file type) are kept.
    pub fn apply(&self, current_mode: u32, is_dir: bool) -> u32 {
        let bits = match self {
            Self::Octal(v) => *v & 0o7777,
            Self::Symbolic(s) => u32::from(s.apply_bits((current_mode & 0o7777) as u16, is_dir)),
        };
        (current_mode & !0o7777) | bits
    }
}

impl fmt::Display for Chmod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Octal(v) => write!(f, "{v:04o}"),
            Self::Symbolic(s) => f.write_str(s.as_str()),
        }
    }
}

/// Parses a non-empty `--chmod` value.
///
/// Octal digits only (no `0o` prefix, no sign) up to `7777`; larger octal
/// values and anything else that starts with a digit are errors. Otherwise a
/// symbolic mode, see [`SymbolicMode`]. BuildKit treats an empty `--chmod=`
/// as "not given"; this function reports it as an error.
pub fn parse_chmod(s: &str) -> Result<Chmod, ValueError> {
    let non_octal = || {
        ValueError::new(format!(
            "invalid chmod parameter \"{s}\": expected an octal number between 0 and 07777"
        ))
    };
    if let Some(v) = parse_uint(s, 8, 32) {
        return if v > 0o7777 {
            Err(non_octal())
        } else {
            Ok(Chmod::Octal(v as u32))
        };
    }
    if s.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        return Err(non_octal());
    }
    let ops = parse_symbolic(s.as_bytes()).ok_or_else(|| {
        ValueError::new(format!(
            "invalid chmod parameter \"{s}\": expected an octal mode up to 07777 \
             or a symbolic mode such as u+x, go-w or u=rwX,go=rX"
        ))
    })?;
    Ok(Chmod::Symbolic(SymbolicMode {
        text: s.to_owned(),
        ops,
    }))
}

/// BSD `setmode` with umask 0. `None` for a syntax error.
fn parse_symbolic(s: &[u8]) -> Option<Vec<Op>> {
    let mut ops = Vec::new();
    let mut i = 0;
    let mut equal_done = false;
    loop {
        // Who.
        let mut who: u16 = 0;
        loop {
            match *s.get(i)? {
                b'a' => who |= STANDARD,
                b'u' => who |= IS_UID | RWXU,
                b'g' => who |= IS_GID | RWXG,
                b'o' => who |= RWXO,
                _ => break,
            }
            i += 1;
        }
        // One or more operator + permission-list pairs for this `who`.
        loop {
            let op = s[i];
            i += 1;
            match op {
                b'+' | b'-' => {}
                b'=' => equal_done = false,
                _ => return None,
            }
            who &= !IS_TXT;
            let mut perm: u16 = 0;
            let mut perm_x: u16 = 0;
            loop {
                let c = s.get(i).copied().unwrap_or(0);
                match c {
                    b'r' => perm |= R_ALL,
                    b'w' => perm |= W_ALL,
                    b'x' => perm |= X_ALL,
                    b'X' => {
                        if op == b'-' {
                            perm |= X_ALL;
                        } else {
                            perm_x = X_ALL;
                        }
                    }
                    b's' => {
                        if who == 0 || who & !RWXO != 0 {
                            perm |= IS_UID | IS_GID;
                        }
                    }
                    b't' => {
                        if who == 0 || who & !RWXO != 0 {
                            who |= IS_TXT;
                            perm |= IS_TXT;
                        }
                    }
                    b'u' | b'g' | b'o' => {
                        if perm != 0 {
                            add(&mut ops, op, who, perm);
                            perm = 0;
                        }
                        if op == b'=' {
                            equal_done = true;
                        }
                        if perm_x != 0 {
                            add(&mut ops, b'X', who, perm_x);
                            perm_x = 0;
                        }
                        ops.push(copy_op(c, who, op));
                    }
                    _ => {
                        if perm != 0 || (op == b'=' && !equal_done) {
                            if op == b'=' {
                                equal_done = true;
                            }
                            add(&mut ops, op, who, perm);
                        }
                        if perm_x != 0 {
                            add(&mut ops, b'X', who, perm_x);
                        }
                        break;
                    }
                }
                i += 1;
            }
            match s.get(i) {
                None => return Some(ops),
                Some(b',') => {
                    i += 1;
                    break;
                }
                Some(_) => {}
            }
        }
    }
}

fn add(ops: &mut Vec<Op>, op: u8, who: u16, perm: u16) {
    let bits = if who != 0 { who & perm } else { perm };
    match op {
        b'=' => {
            ops.push(Op::Clear(if who != 0 { who } else { STANDARD }));
            ops.push(Op::Set(bits));
        }
        b'+' => ops.push(Op::Set(bits)),
        b'-' => ops.push(Op::Clear(bits)),
        _ => ops.push(Op::SetIfExec(bits)),
    }
}

fn copy_op(from: u8, who: u16, op: u8) -> Op {
    let (to_u, to_g, to_o) = if who == 0 {
        (true, true, true)
    } else {
        (who & R_USR != 0, who & R_GRP != 0, who & R_OTH != 0)
    };
    Op::Copy {
        from,
        to_u,
        to_g,
        to_o,
        clear: op != b'+',
        set: op != b'-',
    }
}

impl serde::Serialize for Chmod {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str, mode: u32) -> u32 {
        parse_chmod(s).unwrap().apply(mode, false)
    }

    fn sym_dir(s: &str, mode: u32) -> u32 {
        parse_chmod(s).unwrap().apply(mode, true)
    }

    #[test]
    fn octal() {
        assert_eq!(parse_chmod("755").unwrap(), Chmod::Octal(0o755));
        assert_eq!(parse_chmod("0644").unwrap(), Chmod::Octal(0o644));
        assert_eq!(parse_chmod("7777").unwrap(), Chmod::Octal(0o7777));
        assert_eq!(parse_chmod("0").unwrap(), Chmod::Octal(0));
        assert_eq!(parse_chmod("00000755").unwrap(), Chmod::Octal(0o755));
        assert_eq!(
            parse_chmod("4755").unwrap().apply(0o100644, false),
            0o104755
        );
        assert_eq!(parse_chmod("0600").unwrap().apply(0o040777, true), 0o040600);
        assert_eq!(Chmod::Octal(0o755).to_string(), "0755");
        for bad in [
            "10000",
            "17777",
            "8",
            "0755a",
            "9x",
            "0o755",
            "77777777777777",
            "1,u+x",
        ] {
            let e = parse_chmod(bad).unwrap_err().to_string();
            assert!(
                e.contains("expected an octal number between 0 and 07777"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn symbolic_errors() {
        for bad in [
            "", ",", "q+r", "z", "u", "g", "o", "go", "u+x,", "u+x,,g+w", "+x y", "-0755", "+0",
            "u+x:", "a+ x", "ü+x",
        ] {
            let e = parse_chmod(bad).unwrap_err().to_string();
            assert!(e.contains("symbolic mode"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn umask_is_not_applied() {
        // BuildKit parses with a umask of 0: a bare `+w` reaches group and other.
        assert_eq!(sym("+x", 0o644), 0o755);
        assert_eq!(sym("+w", 0o444), 0o666);
        assert_eq!(sym("-r", 0o777), 0o333);
    }

    #[test]
    fn vectors_from_setmode_semantics() {
        // (start, expected, mode)
        let cases: &[(u32, u32, &str)] = &[
            (0o777, 0o000, "="),
            (0o777, 0o777, "+"),
            (0o421, 0o421, "-"),
            (0o421, 0o1421, "+t"),
            (0o1421, 0o421, "-t"),
            (0o000, 0o400, "u+r"),
            (0o000, 0o100, "u+x"),
            (0o000, 0o000, "u+X"),
            (0o001, 0o101, "u+X"),
            (0o000, 0o4000, "u+s"),
            (0o000, 0o2000, "g+s"),
            (0o000, 0o000, "o+s"),
            (0o000, 0o000, "o+t"),
            (0o010, 0o111, "+X"),
            (0o000, 0o6000, "+s"),
            (0o6777, 0o777, "-s"),
            (0o777, 0o666, "-X"),
            (0o777, 0o666, "-x"),
            (0o777, 0o677, "u-X"),
            (0o777, 0o677, "u=rw"),
            (0o777, 0o077, "u="),
            (0o000, 0o666, "=rw"),
            (0o042, 0o442, "u=g"),
            (0o742, 0o442, "u=g"),
            (0o722, 0o022, "u=g-w"),
            (0o772, 0o572, "u=g-w"),
            (0o021, 0o121, "u+o"),
            (0o021, 0o321, "u+go"),
            (0o111, 0o000, "-u"),
            (0o000, 0o764, "a=r,ug=rw,u+x"),
            (0o777, 0o764, "a=r,ug=rw,u+x"),
            (0o000, 0o1624, "o+r,g+w,a+t,g-s,u+og"),
            (0o2100, 0o1724, "o+r,g+w,a+t,g-s,u+og"),
            (0o777, 0o755, "go-w"),
            (0o666, 0o666, "=rw,+X"),
            (0o766, 0o777, "=rw,+X"),
            (0o000, 0o755, "u=rwx,go=rx"),
            (0o000, 0o755, "u=rwx,go=u-w"),
            (0o777, 0o700, "go="),
            (0o770, 0o755, "go=u-w"),
            (0o370, 0o311, "go=u-w"),
            (0o644, 0o744, "u+x-w+w"),
            (0o644, 0o544, "u+x-w"),
            (0o1777, 0o1000, "="),
            (0o000, 0o1000, "+rt"),
            (0o644, 0o640, "o="),
            (0o751, 0o777, "g=u,o=g"),
            (0o741, 0o771, "g=u,o=o"),
            (0o644, 0o444, "a-w"),
            (0o600, 0o660, "g=u"),
        ];
        for &(start, want, mode) in cases {
            assert_eq!(sym(mode, start), want, "{mode} on {start:o}");
        }
    }

    #[test]
    fn capital_x() {
        // Directories always get it with + and =.
        assert_eq!(sym_dir("+X", 0o040000), 0o040111);
        assert_eq!(sym_dir("u=rwX,go=rX", 0o040500), 0o040755);
        assert_eq!(sym_dir("a+X", 0o040500), 0o040511);
        // Files only when an execute bit was already set.
        assert_eq!(sym("u=rwX,go=rX", 0o100600), 0o100644);
        assert_eq!(sym("u=rwX,go=rX", 0o100700), 0o100755);
        assert_eq!(sym("a+X", 0o100644), 0o100644);
        assert_eq!(sym("a+X", 0o100744), 0o100755);
        // The test uses the mode from before any clause is applied.
        assert_eq!(sym("a-x,a+X", 0o100744), 0o100755);
        assert_eq!(sym("a+x,a-x,+X", 0o100644), 0o100644);
        // -X clears like -x, on files and directories alike.
        assert_eq!(sym("-X", 0o100755), 0o100644);
        assert_eq!(sym_dir("o-X", 0o040755), 0o040754);
    }

    #[test]
    fn chained_operators() {
        // One `who` may carry several operators, even several `=`.
        assert_eq!(sym("u=r=w", 0o777), 0o277);
        assert_eq!(sym("+", 0o640), 0o640);
    }

    #[test]
    fn file_type_bits_are_kept() {
        assert_eq!(sym("u+x", 0o100644), 0o100744);
        assert_eq!(sym_dir("g+w", 0o040755), 0o040775);
        let c = parse_chmod("u=rwX,go=rX").unwrap();
        assert_eq!(c.to_string(), "u=rwX,go=rX");
        let Chmod::Symbolic(s) = c else {
            panic!("not symbolic")
        };
        assert_eq!(s.as_str(), "u=rwX,go=rX");
    }
}
