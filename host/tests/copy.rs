//! COPY and ADD into a build root: each BuildKit rule with a real context
//! directory, the resulting tree (type, mode, owner, content, link target,
//! nlink) and the exact change set; hostile contexts and destinations; the
//! layer written from a change set.
//!
//! Owners are only asserted when running as root (chown needs it); the
//! rest holds for any user.

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use kiln::dockerfile::ignore::IgnoreMatcher;
use kiln::plan::instruction::{Copy, HeredocBody, Source};
use kiln::plan::values::parse_chmod;
use kiln::rootfs::{ChangeSet, CopyError, CopyRequest, CopySource, Root, copy_into};
use kiln::snapshot::{LayerCompression, LayerWriter, MediaTypes, write_changes};
use kiln::store::BlobStore;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------- helpers

const NOW: i64 = 1_700_000_000;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

struct Env {
    _tmp: tempfile::TempDir,
    ctx: PathBuf,
    root_path: PathBuf,
    root: Root,
    ignore: IgnoreMatcher,
    /// A file outside both the context and the root.
    sentinel: PathBuf,
}

impl Env {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = tmp.path().join("ctx");
        fs::create_dir(&ctx).unwrap();
        let root_path = tmp.path().join("root");
        let root = Root::create(&root_path).unwrap();
        let sentinel = tmp.path().join("sentinel");
        fs::write(&sentinel, "HOST SECRET").unwrap();
        Self {
            _tmp: tmp,
            ctx,
            root_path,
            root,
            ignore: IgnoreMatcher::default(),
            sentinel,
        }
    }

    /// Writes a context file with `mode` (parents created).
    fn file(&self, rel: &str, content: &str, mode: u32) -> &Self {
        write_file(&self.ctx.join(rel), content, mode);
        self
    }

    fn dir(&self, rel: &str, mode: u32) -> &Self {
        let p = self.ctx.join(rel);
        fs::create_dir_all(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        self
    }

    fn run(&self, copy: &Copy) -> Result<ChangeSet, CopyError> {
        self.run_with(copy, "/", None)
    }

    fn run_with(
        &self,
        copy: &Copy,
        workdir: &str,
        chown: Option<(u32, u32)>,
    ) -> Result<ChangeSet, CopyError> {
        let dir = Dir::open_ambient_dir(&self.ctx, ambient_authority()).unwrap();
        copy_into(
            &self.root,
            &CopyRequest {
                copy,
                source: CopySource::Context {
                    dir: &dir,
                    ignore: &self.ignore,
                },
                workdir,
                chown,
                mtime_now: NOW,
            },
        )
    }

    fn at(&self, image_path: &str) -> PathBuf {
        self.root_path.join(image_path.trim_start_matches('/'))
    }

    fn meta(&self, image_path: &str) -> fs::Metadata {
        fs::symlink_metadata(self.at(image_path)).unwrap_or_else(|e| panic!("{image_path}: {e}"))
    }

    fn exists(&self, image_path: &str) -> bool {
        fs::symlink_metadata(self.at(image_path)).is_ok()
    }

    fn read(&self, image_path: &str) -> String {
        fs::read_to_string(self.at(image_path)).unwrap()
    }

    fn mode(&self, image_path: &str) -> u32 {
        self.meta(image_path).mode() & 0o7777
    }

    fn owner(&self, image_path: &str) -> (u32, u32) {
        let m = self.meta(image_path);
        (m.uid(), m.gid())
    }
}

fn write_file(p: &Path, content: &str, mode: u32) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn cp(sources: &[&str], dest: &str) -> Copy {
    Copy {
        add: false,
        sources: sources.iter().map(|s| Source::Path((*s).into())).collect(),
        dest: dest.into(),
        from: None,
        chown: None,
        chmod: None,
        link: false,
        parents: false,
        exclude: Vec::new(),
        checksum: None,
        keep_git_dir: false,
        unpack: None,
        heredocs: Vec::new(),
    }
}

fn add(sources: &[&str], dest: &str) -> Copy {
    Copy {
        add: true,
        ..cp(sources, dest)
    }
}

fn paths(c: &ChangeSet) -> Vec<&str> {
    c.paths.iter().map(String::as_str).collect()
}

// ------------------------------------------------------------------ basics

#[test]
fn file_into_directory_dest_keeps_mode_and_mtime_and_resets_owner() {
    let env = Env::new();
    env.file("a.txt", "alpha", 0o640);
    let mtime = 1_500_000_000;
    let f = fs::File::options()
        .write(true)
        .open(env.ctx.join("a.txt"))
        .unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime))
        .unwrap();
    if is_root() {
        std::os::unix::fs::chown(env.ctx.join("a.txt"), Some(1234), Some(5678)).unwrap();
    }
    let changes = env.run(&cp(&["a.txt"], "/app/")).unwrap();
    assert_eq!(paths(&changes), ["/app", "/app/a.txt"]);
    assert!(env.meta("/app/a.txt").is_file());
    assert_eq!(env.read("/app/a.txt"), "alpha");
    assert_eq!(env.mode("/app/a.txt"), 0o640);
    assert_eq!(env.meta("/app/a.txt").mtime(), mtime as i64);
    assert_eq!(env.meta("/app/a.txt").nlink(), 1);
    assert_eq!(env.mode("/app"), 0o755, "created parents are 0755");
    if is_root() {
        assert_eq!(
            env.owner("/app/a.txt"),
            (0, 0),
            "context files are root-owned"
        );
        assert_eq!(env.owner("/app"), (0, 0));
    }
}

#[test]
fn file_to_a_file_dest_and_into_an_existing_dir() {
    let env = Env::new();
    env.file("a.txt", "alpha", 0o644);
    let changes = env.run(&cp(&["a.txt"], "/etc/b.conf")).unwrap();
    assert_eq!(paths(&changes), ["/etc", "/etc/b.conf"]);
    assert_eq!(env.read("/etc/b.conf"), "alpha");
    // Without a trailing slash, an existing directory is copied into.
    let changes = env.run(&cp(&["a.txt"], "/etc")).unwrap();
    assert_eq!(paths(&changes), ["/etc", "/etc/a.txt"]);
    assert_eq!(env.read("/etc/a.txt"), "alpha");
}

#[test]
fn directory_source_copies_its_contents_and_metadata_below() {
    let env = Env::new();
    env.dir("src/sub", 0o750)
        .file("src/x", "x", 0o600)
        .file("src/sub/y", "y", 0o755);
    fs::set_permissions(env.ctx.join("src"), fs::Permissions::from_mode(0o700)).unwrap();
    let changes = env.run(&cp(&["src"], "/dst")).unwrap();
    assert_eq!(
        paths(&changes),
        ["/dst", "/dst/sub", "/dst/sub/y", "/dst/x"]
    );
    assert!(!env.exists("/dst/src"));
    assert_eq!(
        env.mode("/dst"),
        0o755,
        "the top dest dir does not take the source's mode"
    );
    assert_eq!(env.mode("/dst/sub"), 0o750);
    assert_eq!(env.mode("/dst/sub/y"), 0o755);
    assert_eq!(env.read("/dst/x"), "x");
    // A second copy merges into the existing tree.
    env.file("src2/z", "z", 0o644);
    let changes = env.run(&cp(&["src2/"], "/dst/")).unwrap();
    assert_eq!(paths(&changes), ["/dst", "/dst/z"]);
    assert!(env.exists("/dst/x"));
}

#[test]
fn relative_dest_is_taken_from_the_workdir() {
    let env = Env::new();
    env.file("a.txt", "a", 0o644);
    let changes = env
        .run_with(&cp(&["a.txt"], "rel/"), "/work/dir", None)
        .unwrap();
    assert_eq!(
        paths(&changes),
        ["/work", "/work/dir", "/work/dir/rel", "/work/dir/rel/a.txt"]
    );
    let changes = env.run_with(&cp(&["a.txt"], "."), "/work", None).unwrap();
    assert_eq!(paths(&changes), ["/work", "/work/a.txt"]);
}

#[test]
fn leading_slash_and_dotdot_are_clamped_to_the_context() {
    let env = Env::new();
    env.file("a.txt", "inside", 0o644);
    env.run(&cp(&["/a.txt"], "/one")).unwrap();
    env.run(&cp(&["../../a.txt"], "/two")).unwrap();
    assert_eq!(env.read("/one"), "inside");
    assert_eq!(env.read("/two"), "inside");
    // ../../etc/passwd is the context's etc/passwd, which does not exist.
    let err = env.run(&cp(&["../../etc/passwd"], "/p")).unwrap_err();
    assert!(matches!(err, CopyError::NotFound { .. }), "{err}");
    assert_eq!(err.to_string(), "../../etc/passwd: not found");
    assert!(!env.exists("/p"));
}

#[test]
fn wildcards_follow_go_filepath_match() {
    let env = Env::new();
    env.file("a.txt", "a", 0o644)
        .file("b.txt", "b", 0o644)
        .file("c.md", "c", 0o644)
        .file("arr[0].txt", "lit", 0o644)
        .file("d1/in.txt", "d1", 0o644)
        .file("d2/in.txt", "d2", 0o644);
    let changes = env.run(&cp(&["*.txt"], "/w/")).unwrap();
    assert_eq!(
        paths(&changes),
        ["/w", "/w/a.txt", "/w/arr[0].txt", "/w/b.txt"]
    );
    let changes = env.run(&cp(&["arr[[]0].txt"], "/lit")).unwrap();
    assert_eq!(paths(&changes), ["/lit"]);
    assert_eq!(env.read("/lit"), "lit");
    // A wildcard in a middle segment; both matches keep their file name.
    env.run(&cp(&["d?/in.txt"], "/m/")).unwrap();
    assert_eq!(
        env.read("/m/in.txt"),
        "d2",
        "later matches overwrite earlier ones"
    );
    // A directory matched by a wildcard copies its contents.
    let changes = env.run(&cp(&["d[1]"], "/dd/")).unwrap();
    assert_eq!(paths(&changes), ["/dd", "/dd/in.txt"]);
}

#[test]
fn missing_sources_and_empty_wildcards() {
    let env = Env::new();
    let err = env.run(&cp(&["nope.txt"], "/x")).unwrap_err();
    assert_eq!(err.to_string(), "nope.txt: not found");
    // BuildKit allows a wildcard that matches nothing (AllowEmptyWildcard).
    let changes = env.run(&cp(&["*.nothing"], "/x/")).unwrap();
    assert!(changes.paths.is_empty());
    assert!(!env.exists("/x"));
}

#[test]
fn several_sources_need_a_directory_dest() {
    let env = Env::new();
    env.file("a.txt", "a", 0o644).file("b.txt", "b", 0o644);
    let err = env.run(&cp(&["a.txt", "b.txt"], "/x")).unwrap_err();
    assert!(matches!(err, CopyError::MultipleSources { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("must be a directory and end with a /")
    );
    let err = env.run(&cp(&["*.txt"], "/x")).unwrap_err();
    assert!(matches!(err, CopyError::MultipleSources { .. }), "{err}");
    assert!(!env.exists("/x"), "nothing is written before the check");
    env.run(&cp(&["a.txt", "b.txt"], "/x/")).unwrap();
    assert!(env.exists("/x/a.txt") && env.exists("/x/b.txt"));
}

#[test]
fn dockerignored_paths_are_invisible() {
    let mut env = Env::new();
    env.file("keep.txt", "k", 0o644)
        .file("secret.txt", "s", 0o644)
        .file("dir/a", "a", 0o644)
        .file("dir/junk/b", "b", 0o644)
        .file("logs/x.log", "l", 0o644)
        .file("logs/keep.log", "kl", 0o644);
    env.ignore = IgnoreMatcher::parse("secret.txt\ndir/junk\nlogs\n!logs/keep.log\n").unwrap();
    let err = env.run(&cp(&["secret.txt"], "/s")).unwrap_err();
    assert!(matches!(err, CopyError::NotFound { .. }));
    let changes = env.run(&cp(&["*.txt"], "/w/")).unwrap();
    assert_eq!(paths(&changes), ["/w", "/w/keep.txt"]);
    let changes = env.run(&cp(&["dir"], "/d/")).unwrap();
    assert_eq!(paths(&changes), ["/d", "/d/a"]);
    let changes = env.run(&cp(&["."], "/all/")).unwrap();
    assert!(
        !changes
            .paths
            .iter()
            .any(|p| p.contains("secret") || p.contains("junk"))
    );
    assert!(changes.paths.contains(&"/all/logs/keep.log".to_string()));
    assert!(!env.exists("/all/logs/x.log"));
}

// ---------------------------------------------------------------- symlinks

#[test]
fn top_level_source_symlink_is_followed_inside_the_context() {
    let env = Env::new();
    env.file("real/a.txt", "target", 0o600);
    symlink("real/a.txt", env.ctx.join("link")).unwrap();
    symlink("real", env.ctx.join("dirlink")).unwrap();
    let changes = env.run(&cp(&["link"], "/x/")).unwrap();
    assert_eq!(paths(&changes), ["/x", "/x/link"]);
    assert!(env.meta("/x/link").is_file());
    assert_eq!(env.read("/x/link"), "target");
    assert_eq!(env.mode("/x/link"), 0o600);
    let changes = env.run(&cp(&["dirlink"], "/y")).unwrap();
    assert_eq!(paths(&changes), ["/y", "/y/a.txt"]);
}

#[test]
fn hostile_context_symlinks_never_reach_the_host() {
    let env = Env::new();
    symlink(&env.sentinel, env.ctx.join("abs")).unwrap();
    symlink("../sentinel", env.ctx.join("rel")).unwrap();
    fs::create_dir(env.ctx.join("sub")).unwrap();
    symlink("../../sentinel", env.ctx.join("sub/deep")).unwrap();
    for src in ["abs", "rel", "sub/deep", "sub/../rel"] {
        let err = env.run(&cp(&[src], "/stolen")).unwrap_err();
        assert!(
            matches!(err, CopyError::OutsideContext { .. }),
            "{src}: {err}"
        );
        assert!(err.to_string().contains("points outside the build context"));
    }
    // Through a wildcard too.
    let err = env.run(&cp(&["r?l"], "/stolen")).unwrap_err();
    assert!(matches!(err, CopyError::OutsideContext { .. }), "{err}");
    assert!(!env.exists("/stolen"));
    let mut found = Vec::new();
    collect_contents(&env.root_path, &mut found);
    assert!(!found.iter().any(|c| c.contains("HOST SECRET")));
}

fn collect_contents(p: &Path, out: &mut Vec<String>) {
    for e in fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        let m = fs::symlink_metadata(e.path()).unwrap();
        if m.is_dir() {
            collect_contents(&e.path(), out);
        } else if m.is_file() {
            out.push(fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
}

#[test]
fn symlinks_inside_copied_directories_are_kept_verbatim() {
    let env = Env::new();
    env.file("d/f", "f", 0o644);
    symlink("/etc/passwd", env.ctx.join("d/abs")).unwrap();
    symlink(&env.sentinel, env.ctx.join("d/host")).unwrap();
    symlink("f", env.ctx.join("d/rel")).unwrap();
    let changes = env.run(&cp(&["d"], "/d")).unwrap();
    assert_eq!(
        paths(&changes),
        ["/d", "/d/abs", "/d/f", "/d/host", "/d/rel"]
    );
    for (p, t) in [
        ("/d/abs", PathBuf::from("/etc/passwd")),
        ("/d/host", env.sentinel.clone()),
        ("/d/rel", PathBuf::from("f")),
    ] {
        assert!(env.meta(p).file_type().is_symlink(), "{p}");
        assert_eq!(fs::read_link(env.at(p)).unwrap(), t);
    }
}

#[test]
fn destination_symlinks_resolve_inside_the_root() {
    let env = Env::new();
    env.file("a.txt", "a", 0o644);
    symlink("/", env.at("/evil")).unwrap();
    fs::create_dir(env.at("/real")).unwrap();
    symlink("../real", env.at("/rel")).unwrap();
    let changes = env.run(&cp(&["a.txt"], "/evil/x")).unwrap();
    assert_eq!(paths(&changes), ["/x"]);
    assert_eq!(env.read("/x"), "a");
    let changes = env.run(&cp(&["a.txt"], "/evil/../../tmp/y/")).unwrap();
    assert_eq!(paths(&changes), ["/tmp", "/tmp/y", "/tmp/y/a.txt"]);
    let changes = env.run(&cp(&["a.txt"], "/rel/")).unwrap();
    assert_eq!(paths(&changes), ["/real", "/real/a.txt"]);
    assert!(
        env.meta("/evil").file_type().is_symlink(),
        "the link itself is untouched"
    );
}

// ------------------------------------------------------ ownership and modes

#[test]
fn chown_applies_to_copied_entries_and_created_parents() {
    let env = Env::new();
    env.file("d/f", "f", 0o644);
    symlink("f", env.ctx.join("d/l")).unwrap();
    fs::create_dir(env.at("/exists")).unwrap();
    let changes = env
        .run_with(&cp(&["d"], "/exists/new/dst"), "/", Some((1000, 2000)))
        .unwrap();
    assert_eq!(
        paths(&changes),
        [
            "/exists",
            "/exists/new",
            "/exists/new/dst",
            "/exists/new/dst/f",
            "/exists/new/dst/l"
        ]
    );
    if is_root() {
        for p in [
            "/exists/new",
            "/exists/new/dst",
            "/exists/new/dst/f",
            "/exists/new/dst/l",
        ] {
            assert_eq!(env.owner(p), (1000, 2000), "{p}");
        }
        assert_eq!(
            env.owner("/exists"),
            (0, 0),
            "existing parents keep their owner"
        );
    }
}

#[test]
fn chmod_octal_applies_to_files_and_directories() {
    let env = Env::new();
    env.dir("d/sub", 0o700).file("d/sub/f", "f", 0o600);
    let mut c = cp(&["d"], "/p/q");
    c.chmod = Some(parse_chmod("0751").unwrap());
    env.run(&c).unwrap();
    assert_eq!(env.mode("/p/q/sub"), 0o751);
    assert_eq!(env.mode("/p/q/sub/f"), 0o751);
    assert_eq!(env.mode("/p"), 0o755, "created parents are not chmodded");
}

#[test]
fn chmod_symbolic_uses_capital_x_per_file() {
    let env = Env::new();
    env.file("s/plain", "p", 0o600)
        .file("s/exe", "e", 0o700)
        .dir("s/dir", 0o700);
    let mut c = cp(&["s"], "/t");
    c.chmod = Some(parse_chmod("u=rwX,go=rX").unwrap());
    env.run(&c).unwrap();
    assert_eq!(env.mode("/t/plain"), 0o644);
    assert_eq!(env.mode("/t/exe"), 0o755);
    assert_eq!(env.mode("/t/dir"), 0o755);
}

#[test]
fn copy_from_another_root_keeps_owners_and_resolves_links_there() {
    let env = Env::new();
    let stage_path = env._tmp.path().join("stage");
    let stage = Root::create(&stage_path).unwrap();
    write_file(&stage_path.join("out/bin"), "binary", 0o755);
    write_file(&stage_path.join("target/t"), "via link", 0o644);
    // An absolute link in a stage root is resolved inside that root.
    symlink("/target", stage_path.join("out/abs")).unwrap();
    if is_root() {
        std::os::unix::fs::lchown(stage_path.join("out/bin"), Some(1000), Some(1001)).unwrap();
    }
    let run = |copy: &Copy, chown| {
        copy_into(
            &env.root,
            &CopyRequest {
                copy,
                source: CopySource::Root(&stage),
                workdir: "/",
                chown,
                mtime_now: NOW,
            },
        )
    };
    let changes = run(&cp(&["/out/bin"], "/usr/local/bin/"), None).unwrap();
    assert_eq!(
        paths(&changes),
        ["/usr", "/usr/local", "/usr/local/bin", "/usr/local/bin/bin"]
    );
    assert_eq!(env.read("/usr/local/bin/bin"), "binary");
    assert_eq!(env.mode("/usr/local/bin/bin"), 0o755);
    if is_root() {
        assert_eq!(
            env.owner("/usr/local/bin/bin"),
            (1000, 1001),
            "--from keeps owners"
        );
    }
    run(&cp(&["out/abs/t"], "/t"), None).unwrap();
    assert_eq!(env.read("/t"), "via link");
    run(&cp(&["/out/bin"], "/o"), Some((7, 8))).unwrap();
    if is_root() {
        assert_eq!(env.owner("/o"), (7, 8));
    }
}

#[test]
fn hard_links_among_copied_files_stay_hard_links() {
    let env = Env::new();
    env.file("h/one", "same", 0o644);
    fs::hard_link(env.ctx.join("h/one"), env.ctx.join("h/two")).unwrap();
    env.run(&cp(&["h"], "/h")).unwrap();
    let (a, b) = (env.meta("/h/one"), env.meta("/h/two"));
    assert_eq!(a.ino(), b.ino());
    assert_eq!(a.nlink(), 2);
    assert_eq!(env.read("/h/two"), "same");
}

// ------------------------------------------------- --parents and --exclude

#[test]
fn parents_keep_the_source_path_with_an_optional_pivot() {
    let env = Env::new();
    env.dir("a/b", 0o750)
        .file("a/b/x.txt", "x", 0o644)
        .file("a/b/y.md", "y", 0o644)
        .file("a/c/z.txt", "z", 0o644);
    let mut c = cp(&["a/b/*.txt"], "/dst/");
    c.parents = true;
    let changes = env.run(&c).unwrap();
    assert_eq!(
        paths(&changes),
        ["/dst", "/dst/a", "/dst/a/b", "/dst/a/b/x.txt"]
    );
    assert_eq!(
        env.mode("/dst/a/b"),
        0o750,
        "parents take the source dirs' modes"
    );
    let mut c = cp(&["a/./**/z.txt"], "/piv");
    c.parents = true;
    let changes = env.run(&c).unwrap();
    assert_eq!(paths(&changes), ["/piv", "/piv/c", "/piv/c/z.txt"]);
    let mut c = cp(&["a/nope.txt"], "/n/");
    c.parents = true;
    let err = env.run(&c).unwrap_err();
    assert_eq!(err.to_string(), "a/nope.txt: not found");
}

#[test]
fn exclude_patterns_are_relative_to_the_source() {
    let env = Env::new();
    env.file("app/main.rs", "m", 0o644)
        .file("app/debug.log", "l", 0o644)
        .file("app/sub/trace.log", "t", 0o644)
        .file("app/sub/keep.rs", "k", 0o644)
        .file("home.txt", "h", 0o644)
        .file("homework.md", "w", 0o644);
    let mut c = cp(&["app"], "/app");
    c.exclude = vec!["*.log".into(), "sub/*.log".into()];
    let changes = env.run(&c).unwrap();
    assert_eq!(
        paths(&changes),
        ["/app", "/app/main.rs", "/app/sub", "/app/sub/keep.rs"]
    );
    let mut c = cp(&["hom*"], "/h/");
    c.exclude = vec!["*.txt".into()];
    let changes = env.run(&c).unwrap();
    assert_eq!(paths(&changes), ["/h", "/h/homework.md"]);
}

#[test]
fn link_flag_gives_the_same_files() {
    let env = Env::new();
    env.file("a.txt", "a", 0o644);
    let mut c = cp(&["a.txt"], "/l/");
    c.link = true;
    let changes = env.run(&c).unwrap();
    assert_eq!(paths(&changes), ["/l", "/l/a.txt"]);
    assert_eq!(env.read("/l/a.txt"), "a");
}

// ---------------------------------------------------------------- heredocs

fn heredoc(name: &str, content: &str) -> HeredocBody {
    HeredocBody {
        name: name.into(),
        fd: 0,
        content: content.into(),
        expand: true,
    }
}

#[test]
fn heredoc_sources_are_0644_files_named_after_the_heredoc() {
    let env = Env::new();
    let mut c = cp(&[], "/etc/app/");
    c.sources = vec![Source::Heredoc(0), Source::Heredoc(1)];
    c.heredocs = vec![heredoc("one.conf", "1\n"), heredoc("two.conf", "2\n")];
    let changes = env.run_with(&c, "/", Some((5, 6))).unwrap();
    assert_eq!(
        paths(&changes),
        ["/etc", "/etc/app", "/etc/app/one.conf", "/etc/app/two.conf"]
    );
    assert_eq!(env.read("/etc/app/one.conf"), "1\n");
    assert_eq!(env.mode("/etc/app/two.conf"), 0o644);
    assert_eq!(env.meta("/etc/app/one.conf").mtime(), NOW);
    if is_root() {
        assert_eq!(env.owner("/etc/app/one.conf"), (5, 6));
    }
    let mut c = cp(&[], "/run.sh");
    c.sources = vec![Source::Heredoc(0)];
    c.heredocs = vec![heredoc("EOF", "echo hi\n")];
    c.chmod = Some(parse_chmod("+x").unwrap());
    let changes = env.run(&c).unwrap();
    assert_eq!(paths(&changes), ["/run.sh"]);
    assert_eq!(env.mode("/run.sh"), 0o755);
}

// --------------------------------------------------------------------- ADD

fn sample_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o750);
    h.set_uid(11);
    h.set_gid(12);
    h.set_mtime(1_234_567_890);
    h.set_size(0);
    b.append_data(&mut h, "pkg/", std::io::empty()).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o640);
    h.set_uid(11);
    h.set_gid(12);
    h.set_mtime(1_234_567_890);
    h.set_size(5);
    b.append_data(&mut h, "pkg/file", &b"hello"[..]).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(0);
    b.append_link(&mut h, "pkg/link", "file").unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(2);
    b.append_data(&mut h, ".wh.kept", &b"wh"[..]).unwrap();
    b.into_inner().unwrap()
}

fn compress(kind: &str, data: &[u8]) -> Vec<u8> {
    match kind {
        "plain" => data.to_vec(),
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "bzip2" => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "xz" => {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "zstd" => zstd::encode_all(data, 1).unwrap(),
        _ => unreachable!(),
    }
}

#[test]
fn add_extracts_local_archives_detected_by_content() {
    for kind in ["plain", "gzip", "bzip2", "xz", "zstd"] {
        let env = Env::new();
        // The name says nothing about the format.
        fs::write(env.ctx.join("archive.bin"), compress(kind, &sample_tar())).unwrap();
        write_file(&env.at("/opt/existing"), "old", 0o644);
        let changes = env.run(&add(&["archive.bin"], "/opt")).unwrap();
        assert_eq!(
            paths(&changes),
            [
                "/opt",
                "/opt/.wh.kept",
                "/opt/pkg",
                "/opt/pkg/file",
                "/opt/pkg/link"
            ],
            "{kind}"
        );
        assert_eq!(
            env.read("/opt/existing"),
            "old",
            "{kind}: union with the dest"
        );
        assert_eq!(env.read("/opt/pkg/file"), "hello");
        assert_eq!(env.mode("/opt/pkg/file"), 0o640);
        assert_eq!(env.mode("/opt/pkg"), 0o750);
        assert_eq!(env.meta("/opt/pkg/file").mtime(), 1_234_567_890);
        assert_eq!(
            fs::read_link(env.at("/opt/pkg/link")).unwrap(),
            Path::new("file")
        );
        assert!(!env.exists("/opt/archive.bin"));
        if is_root() {
            assert_eq!(
                env.owner("/opt/pkg/file"),
                (11, 12),
                "{kind}: owners from the tar"
            );
        }
    }
}

#[test]
fn add_chown_overrides_archive_owners_and_unpack_false_copies() {
    let env = Env::new();
    fs::write(env.ctx.join("a.tgz"), compress("gzip", &sample_tar())).unwrap();
    env.run_with(&add(&["a.tgz"], "/x/"), "/", Some((3, 4)))
        .unwrap();
    if is_root() {
        assert_eq!(env.owner("/x/pkg/file"), (3, 4));
    }
    let mut c = add(&["a.tgz"], "/y/");
    c.unpack = Some(false);
    let changes = env.run(&c).unwrap();
    assert_eq!(paths(&changes), ["/y", "/y/a.tgz"]);
    assert!(env.meta("/y/a.tgz").is_file());
    // COPY never extracts; ADD copies files that are not archives.
    env.run(&cp(&["a.tgz"], "/z/")).unwrap();
    assert!(env.meta("/z/a.tgz").is_file());
    env.file("notes.gz", "not really gzip", 0o644);
    env.run(&add(&["notes.gz"], "/n/")).unwrap();
    assert_eq!(env.read("/n/notes.gz"), "not really gzip");
}

#[test]
fn add_archive_entries_cannot_climb_out_of_the_dest() {
    let env = Env::new();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(1);
    {
        let name = b"../../escape";
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name);
    }
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    fs::write(env.ctx.join("evil.tar"), b.into_inner().unwrap()).unwrap();
    let err = env.run(&add(&["evil.tar"], "/d/")).unwrap_err();
    assert!(matches!(err, CopyError::Root { .. }), "{err}");
    assert!(!env._tmp.path().join("escape").exists());
    assert!(!env.exists("/escape"));
}

#[test]
fn add_url_and_git_sources_are_reported_as_not_supported() {
    let env = Env::new();
    let mut c = add(&[], "/x");
    c.sources = vec![Source::Url("https://example.invalid/f".into())];
    let err = env.run(&c).unwrap_err();
    assert!(matches!(err, CopyError::NotSupported { .. }));
    assert!(err.to_string().contains("https://example.invalid/f"));
    c.sources = vec![Source::Git("https://example.invalid/r.git".into())];
    assert!(matches!(
        env.run(&c).unwrap_err(),
        CopyError::NotSupported { .. }
    ));
}

// --------------------------------------------------------------- conflicts

#[test]
fn directory_onto_a_file_and_file_onto_a_directory_fail() {
    let env = Env::new();
    env.file("d/sub/f", "f", 0o644).file("a", "a", 0o644);
    write_file(&env.at("/t/sub"), "file in the way", 0o644);
    let err = env.run(&cp(&["d"], "/t")).unwrap_err();
    assert!(matches!(err, CopyError::Conflict { .. }), "{err}");
    fs::create_dir_all(env.at("/u/a")).unwrap();
    let err = env.run(&cp(&["a"], "/u/")).unwrap_err();
    assert!(matches!(err, CopyError::Conflict { .. }), "{err}");
    let err = env.run(&cp(&["d"], "/t/sub")).unwrap_err();
    assert!(matches!(err, CopyError::Conflict { .. }), "{err}");
}

// -------------------------------------------------------------- the layer

#[test]
fn write_changes_emits_exactly_the_change_set() {
    let env = Env::new();
    env.file("d/f", "content", 0o640);
    fs::hard_link(env.ctx.join("d/f"), env.ctx.join("d/g")).unwrap();
    symlink("f", env.ctx.join("d/l")).unwrap();
    write_file(&env.at("/untouched"), "u", 0o644);
    let changes = env.run(&cp(&["d"], "/app/")).unwrap();
    let store_dir = env._tmp.path().join("store");
    let store = BlobStore::open(&store_dir).unwrap();
    let mut w = LayerWriter::new(&store, LayerCompression::None, MediaTypes::Oci).unwrap();
    write_changes(&env.root, &changes, &mut w).unwrap();
    let layer = w.finish().unwrap();
    let mut blob = Vec::new();
    store
        .open_blob(&layer.digest)
        .unwrap()
        .read_to_end(&mut blob)
        .unwrap();
    let mut ar = tar::Archive::new(&blob[..]);
    let mut seen = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let kind = e.header().entry_type();
        let mode = e.header().mode().unwrap();
        let link = e
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().into_owned());
        let mut body = String::new();
        e.read_to_string(&mut body).unwrap();
        seen.push((name, kind, mode, link, body));
    }
    let names: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(names, ["app/", "app/f", "app/g", "app/l"]);
    assert_eq!(seen[1].1, tar::EntryType::Regular);
    assert_eq!(seen[1].2, 0o640);
    assert_eq!(seen[1].4, "content");
    assert_eq!(seen[2].1, tar::EntryType::Link);
    assert_eq!(seen[2].3.as_deref(), Some("app/f"));
    assert_eq!(seen[3].1, tar::EntryType::Symlink);
    assert_eq!(seen[3].3.as_deref(), Some("f"));
}

#[test]
fn relative_links_that_stay_inside_the_context_are_followed() {
    let env = Env::new();
    env.file("a.txt", "top", 0o644).dir("sub", 0o755);
    symlink("../a.txt", env.ctx.join("sub/up")).unwrap();
    symlink("sub/up", env.ctx.join("chain")).unwrap();
    env.run(&cp(&["sub/up"], "/one")).unwrap();
    env.run(&cp(&["chain"], "/two")).unwrap();
    assert_eq!(env.read("/one"), "top");
    assert_eq!(env.read("/two"), "top");
}

#[test]
fn add_extracts_through_a_hostile_dest_symlink_inside_the_root() {
    let env = Env::new();
    fs::write(env.ctx.join("a.tar"), sample_tar()).unwrap();
    symlink("/", env.at("/evil")).unwrap();
    let changes = env.run(&add(&["a.tar"], "/evil/opt/")).unwrap();
    assert!(
        changes.paths.contains(&"/opt/pkg/file".to_string()),
        "{changes:?}"
    );
    assert_eq!(env.read("/opt/pkg/file"), "hello");
}

#[test]
fn unprivileged_roots_skip_ownership_without_failing() {
    let env = Env::new();
    let root = Root::open(&env.root_path)
        .unwrap()
        .with_options(kiln::rootfs::RootOptions { unprivileged: true });
    env.file("f", "f", 0o600);
    let dir = Dir::open_ambient_dir(&env.ctx, ambient_authority()).unwrap();
    let c = cp(&["f"], "/u/");
    copy_into(
        &root,
        &CopyRequest {
            copy: &c,
            source: CopySource::Context {
                dir: &dir,
                ignore: &env.ignore,
            },
            workdir: "/",
            chown: Some((4321, 4321)),
            mtime_now: NOW,
        },
    )
    .unwrap();
    let me = rustix::process::geteuid().as_raw();
    assert_eq!(env.meta("/u/f").uid(), me, "owners are left as created");
    assert_eq!(env.mode("/u/f"), 0o600);
}
