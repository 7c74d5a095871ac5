//! Expected values are derived from moby/buildkit's code; each test names
//! the function it was checked against.

use super::*;
use crate::image::parse_platform;
use crate::plan::values::{Chmod, Chown, HealthcheckOptions, IdOrName, Network, Security};
use crate::plan::{ArgDecl, CopyFrom, HeredocBody};

fn amd64() -> Platform {
    parse_platform("linux/amd64").unwrap()
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn env(pairs: &[(&str, &str)]) -> Instruction {
    Instruction::Env {
        pairs: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

fn shell(s: &str) -> Command {
    Command::Shell(s.to_owned())
}

fn exec(v: &[&str]) -> Command {
    Command::Exec(v.iter().map(|s| (*s).to_owned()).collect())
}

fn run(command: Command) -> Run {
    Run {
        command,
        heredocs: Vec::new(),
        mounts: Vec::new(),
        network: Network::Default,
        security: Security::Sandbox,
    }
}

fn arg(name: &str, value: Option<&str>) -> ArgDecl {
    ArgDecl {
        name: name.to_owned(),
        default: value.map(str::to_owned),
        value: value.map(str::to_owned),
    }
}

fn apply_all(b: &mut ConfigBuilder, instructions: &[Instruction]) {
    for i in instructions {
        assert_eq!(b.apply(i).unwrap(), Applied::Done, "{i:?}");
    }
}

/// The `config` object (serde_json; Go would also escape `<>&`).
fn config_json(b: &ConfigBuilder) -> String {
    serde_json::to_string(&b.config().config).unwrap()
}

fn last_history(b: &ConfigBuilder) -> (&str, bool) {
    let h = b.config().history.last().unwrap();
    assert_eq!(h.comment, HISTORY_COMMENT);
    (h.created_by.as_str(), h.empty_layer)
}

/// `emptyImage` (dockerfile2llb/image.go): WorkingDir `/`, default PATH.
#[test]
fn scratch_config() {
    let b = ConfigBuilder::scratch(&amd64());
    assert_eq!(
        config_json(&b),
        r#"{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"WorkingDir":"/"}"#
    );
    let w = ConfigBuilder::scratch(&parse_platform("windows/amd64").unwrap());
    assert!(w.config().config.env.is_empty());
    assert!(b.base_onbuild_triggers().is_empty());
}

/// `dispatchEnv` + `addEnv`: a key set again is replaced in place; the
/// history line is `ENV k=v …` without quoting.
#[test]
fn env_order_and_replacement() {
    let mut b = ConfigBuilder::scratch(&amd64());
    apply_all(
        &mut b,
        &[
            env(&[("A", "1"), ("B", "two words")]),
            env(&[("PATH", "/opt/bin"), ("A", "3")]),
        ],
    );
    assert_eq!(
        b.config().config.env,
        ["PATH=/opt/bin", "A=3", "B=two words"]
    );
    assert_eq!(last_history(&b), ("ENV PATH=/opt/bin A=3", true));
    assert_eq!(b.config().history[0].created_by, "ENV A=1 B=two words");
}

/// `dispatchCmd`/`dispatchEntrypoint`/`withShell`: shell forms are wrapped
/// in the current SHELL (default `/bin/sh -c`), CMD sets ArgsEscaped, the
/// history line is Go's `%q` of the argv.
#[test]
fn cmd_and_entrypoint_forms() {
    let mut b = ConfigBuilder::scratch(&amd64());
    apply_all(
        &mut b,
        &[Instruction::Cmd {
            command: shell("echo \"hi\" $HOME"),
        }],
    );
    assert_eq!(
        config_json(&b),
        r#"{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh","-c","echo \"hi\" $HOME"],"WorkingDir":"/","ArgsEscaped":true}"#
    );
    assert_eq!(
        last_history(&b),
        (r#"CMD ["/bin/sh" "-c" "echo \"hi\" $HOME"]"#, true)
    );

    apply_all(
        &mut b,
        &[
            Instruction::Shell {
                shell: vec![
                    "/bin/bash".into(),
                    "-eo".into(),
                    "pipefail".into(),
                    "-c".into(),
                ],
            },
            Instruction::Entrypoint {
                command: shell("exec app\tx"),
            },
        ],
    );
    assert_eq!(
        b.config().history[1].created_by,
        "SHELL [/bin/bash -eo pipefail -c]"
    );
    assert_eq!(
        b.config().config.entrypoint,
        ["/bin/bash", "-eo", "pipefail", "-c", "exec app\tx"]
    );
    // A CMD of the same stage survives ENTRYPOINT.
    assert_eq!(b.config().config.cmd.len(), 3);
    assert_eq!(
        last_history(&b),
        (
            r#"ENTRYPOINT ["/bin/bash" "-eo" "pipefail" "-c" "exec app\tx"]"#,
            true
        )
    );
    assert_eq!(
        b.config().config.shell,
        ["/bin/bash", "-eo", "pipefail", "-c"]
    );
}

/// `dispatchEntrypoint`: an inherited CMD is reset (the `d.cmd` tracker is
/// per stage); ArgsEscaped stays as inherited.
#[test]
fn entrypoint_resets_inherited_cmd() {
    let mut base = ConfigBuilder::scratch(&amd64());
    apply_all(
        &mut base,
        &[Instruction::Cmd {
            command: exec(&["nginx", "-g", "daemon off;"]),
        }],
    );
    let mut child = ConfigBuilder::from_stage(&base);
    apply_all(
        &mut child,
        &[Instruction::Entrypoint {
            command: exec(&["/entry.sh"]),
        }],
    );
    assert!(child.config().config.cmd.is_empty());
    assert!(child.config().config.args_escaped);
    assert_eq!(last_history(&child), (r#"ENTRYPOINT ["/entry.sh"]"#, true));
    // Same from an image.
    let mut img = ImageConfig::for_platform(&amd64());
    img.config.cmd = vec!["bash".into()];
    let mut b = ConfigBuilder::from_image(&img);
    apply_all(&mut b, &[Instruction::Entrypoint { command: exec(&[]) }]);
    assert!(b.config().config.cmd.is_empty() && b.config().config.entrypoint.is_empty());
    assert_eq!(last_history(&b), ("ENTRYPOINT []", true));
}

/// `go_quote` is Go's `strconv.Quote`.
#[test]
fn go_quoting() {
    assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
    assert_eq!(
        go_quote("\u{7}\u{8}\u{c}\n\r\t\u{b}\u{1}\u{7f}"),
        r#""\a\b\f\n\r\t\v\x01\x7f""#
    );
    assert_eq!(
        go_quote("é日本\u{a0}\u{200b}\u{feff}\u{e000}\u{1f600}"),
        "\"é日本\\u00a0\\u200b\\ufeff\\ue000\u{1f600}\""
    );
    assert_eq!(go_quote("\u{f0000}"), r#""\U000f0000""#);
    assert_eq!(go_quote_list(&[]), "[]");
}

/// `dispatchExpose`/`dispatchVolume`: maps to `{}`, history is Go's `%v`.
#[test]
fn expose_and_volume() {
    let mut b = ConfigBuilder::scratch(&amd64());
    apply_all(
        &mut b,
        &[
            Instruction::Expose {
                ports: vec!["80/tcp".into(), "53/udp".into()],
            },
            Instruction::Volume {
                paths: vec!["/data".into(), "/var/log".into()],
            },
        ],
    );
    assert_eq!(b.config().history[0].created_by, "EXPOSE [80/tcp 53/udp]");
    assert_eq!(last_history(&b), ("VOLUME [/data /var/log]", true));
    assert_eq!(
        config_json(&b),
        r#"{"ExposedPorts":{"53/udp":{},"80/tcp":{}},"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Volumes":{"/data":{},"/var/log":{}},"WorkingDir":"/"}"#
    );
    assert_eq!(
        b.apply(&Instruction::Volume {
            paths: vec![String::new()]
        }),
        Err(ConfigError::EmptyVolume)
    );
}

/// `dispatchLabel` merges into the base labels; `finalizeResultImage`
/// copies `--label`s last, so they win.
#[test]
fn labels_merge_and_build_labels_win() {
    let mut img = ImageConfig::for_platform(&amd64());
    img.config.labels.insert("vendor".into(), "base".into());
    img.config.labels.insert("keep".into(), "yes".into());
    let mut flags = BTreeMap::new();
    flags.insert("version".to_owned(), "flag".to_owned());
    let mut b = ConfigBuilder::from_image(&img).with_build_labels(flags);
    apply_all(
        &mut b,
        &[Instruction::Label {
            pairs: vec![
                ("vendor".into(), "me & you".into()),
                ("version".into(), "1.0".into()),
            ],
        }],
    );
    assert_eq!(
        last_history(&b),
        ("LABEL vendor=me & you version=1.0", true)
    );
    let out = b.finish_at(vec![], None, t("2024-01-01T00:00:00Z"));
    assert_eq!(
        serde_json::to_string(&out.config.labels).unwrap(),
        r#"{"keep":"yes","vendor":"me & you","version":"flag"}"#
    );
    assert!(
        String::from_utf8(out.to_bytes())
            .unwrap()
            .contains(r#""vendor":"me \u0026 you""#)
    );
}

/// `dispatchWorkdir` + `system.NormalizeWorkdir`: relative paths join the
/// previous one and are cleaned; absolute ones are kept as written; `/`
/// makes no layer, anything else a mkdir layer; no `# buildkit` comment.
#[test]
fn workdir_rules() {
    let mut b = ConfigBuilder::scratch(&amd64());
    let wd =
        |b: &mut ConfigBuilder, p: &str| b.apply(&Instruction::Workdir { path: p.into() }).unwrap();
    assert_eq!(wd(&mut b, "/"), Applied::Done);
    assert_eq!(last_history(&b), ("WORKDIR /", true));
    assert_eq!(
        wd(&mut b, "app/../srv/./x"),
        Applied::Filesystem {
            created_by: "WORKDIR /srv/x".into()
        }
    );
    assert_eq!(b.working_dir(), "/srv/x");
    b.add_history_at("WORKDIR /srv/x", true, t("2024-01-01T00:00:00Z"));
    assert_eq!(last_history(&b), ("WORKDIR /srv/x", false));
    assert_eq!(
        wd(&mut b, "/opt//a/"),
        Applied::Filesystem {
            created_by: "WORKDIR /opt//a/".into()
        }
    );
    assert_eq!(
        wd(&mut b, "b"),
        Applied::Filesystem {
            created_by: "WORKDIR /opt/a/b".into()
        }
    );
    assert_eq!(wd(&mut b, "../../.."), Applied::Done);
    assert_eq!(b.working_dir(), "/");
    // A base image's relative WorkingDir is joined to itself
    // (dispatchStages re-dispatches it).
    let mut img = ImageConfig::for_platform(&amd64());
    img.config.working_dir = "app".into();
    assert_eq!(ConfigBuilder::from_image(&img).working_dir(), "/app/app");
    assert_eq!(go_path_clean("a/../../b"), "../b");
    assert_eq!(go_path_clean(""), ".");
}

/// `dispatchHealthcheck` + `parseHealthcheck`: NONE is `["NONE"]`; exec
/// form `["CMD", …]`, shell form `["CMD-SHELL", "<text>"]`; durations in
/// nanoseconds; history is Go's `%+v` of the struct.
#[test]
fn healthcheck_forms() {
    let mut b = ConfigBuilder::scratch(&amd64());
    apply_all(&mut b, &[Instruction::Healthcheck(Healthcheck::None)]);
    assert_eq!(
        last_history(&b),
        (
            "HEALTHCHECK {Test:[NONE] Interval:0s Timeout:0s StartPeriod:0s StartInterval:0s Retries:0}",
            true
        )
    );
    assert!(config_json(&b).ends_with(r#""Healthcheck":{"Test":["NONE"]}}"#));

    let options = HealthcheckOptions {
        interval: Some(Duration::from_secs(30)),
        timeout: Some(Duration::from_millis(1500)),
        start_period: None,
        start_interval: Some(Duration::from_secs(90)),
        retries: Some(3),
    };
    apply_all(
        &mut b,
        &[Instruction::Healthcheck(Healthcheck::Cmd {
            command: shell("curl -f http://localhost/ || exit 1"),
            options,
        })],
    );
    assert_eq!(
        last_history(&b),
        (
            "HEALTHCHECK {Test:[CMD-SHELL curl -f http://localhost/ || exit 1] Interval:30s Timeout:1.5s StartPeriod:0s StartInterval:1m30s Retries:3}",
            true
        )
    );
    assert!(config_json(&b).ends_with(
        r#""Healthcheck":{"Test":["CMD-SHELL","curl -f http://localhost/ || exit 1"],"Interval":30000000000,"Timeout":1500000000,"StartInterval":90000000000,"Retries":3}}"#
    ));
    apply_all(
        &mut b,
        &[Instruction::Healthcheck(Healthcheck::Cmd {
            command: exec(&["/bin/check", "--fast"]),
            options: HealthcheckOptions::default(),
        })],
    );
    assert!(config_json(&b).ends_with(r#""Healthcheck":{"Test":["CMD","/bin/check","--fast"]}}"#));
}

/// `dispatchOnbuild` appends the trigger text and writes no history;
/// `resolveStages`/`init` take the base's triggers out of the config.
#[test]
fn onbuild_triggers() {
    let mut img = ImageConfig::for_platform(&amd64());
    img.config.on_build = vec!["COPY . /app".into(), "RUN make".into()];
    let mut b = ConfigBuilder::from_image(&img);
    assert_eq!(b.base_onbuild_triggers(), ["COPY . /app", "RUN make"]);
    assert!(b.config().config.on_build.is_empty());
    let before = b.config().history.len();
    apply_all(
        &mut b,
        &[Instruction::Onbuild {
            trigger: "RUN echo child".into(),
        }],
    );
    assert_eq!(b.config().history.len(), before);
    assert_eq!(b.config().config.on_build, ["RUN echo child"]);
    let child = ConfigBuilder::from_stage(&b);
    assert_eq!(child.base_onbuild_triggers(), ["RUN echo child"]);
    assert!(child.config().config.on_build.is_empty());
}

/// `dispatchMaintainer`, `dispatchUser`, `dispatchStopSignal`.
#[test]
fn maintainer_user_stopsignal() {
    let mut b = ConfigBuilder::scratch(&amd64());
    apply_all(
        &mut b,
        &[
            Instruction::Maintainer {
                name: "Jane <jane@example.com>".into(),
            },
            Instruction::User {
                user: "app:app".into(),
            },
            Instruction::Stopsignal {
                signal: "SIGQUIT".into(),
            },
        ],
    );
    let h: Vec<&str> = b
        .config()
        .history
        .iter()
        .map(|h| h.created_by.as_str())
        .collect();
    assert_eq!(
        h,
        [
            "MAINTAINER Jane <jane@example.com>",
            "USER app:app",
            "STOPSIGNAL SIGQUIT"
        ]
    );
    assert_eq!(b.config().author, "Jane <jane@example.com>");
    assert_eq!(b.user(), "app:app");
    assert!(config_json(&b).starts_with(r#"{"User":"app:app","#));
    assert!(config_json(&b).ends_with(r#""WorkingDir":"/","StopSignal":"SIGQUIT"}"#));
}

/// `dispatchArg` + `runCommandString`: ARG writes `ARG k=v` (the value in
/// effect, build args included); RUN lists the declared ARGs with the
/// value the build environment has (ENV of the same name declared before
/// the ARG is overridden by it, one declared after wins), `|n` first, and
/// ends with `# buildkit`. Undeclared build args are not listed.
#[test]
fn arg_and_run_history() {
    let mut b = ConfigBuilder::scratch(&amd64());
    apply_all(
        &mut b,
        &[Instruction::Arg {
            args: vec![arg("A", Some("1")), arg("B", None)],
        }],
    );
    assert_eq!(last_history(&b), ("ARG A=1 B", true));
    let r = run(shell("echo $A"));
    assert_eq!(
        b.apply(&Instruction::Run(r.clone())).unwrap(),
        Applied::Filesystem {
            created_by: "RUN |2 A=1 B= /bin/sh -c echo $A # buildkit".into()
        }
    );
    b.add_history_at(b.run_created_by(&r), true, t("2024-01-01T00:00:00Z"));
    assert_eq!(
        last_history(&b),
        ("RUN |2 A=1 B= /bin/sh -c echo $A # buildkit", false)
    );
    apply_all(
        &mut b,
        &[
            env(&[("A", "from-env")]),
            Instruction::Arg {
                args: vec![arg("A", Some("again")), arg("C", Some("x y"))],
            },
        ],
    );
    assert_eq!(
        b.run_created_by(&run(exec(&["make", "all"]))),
        "RUN |3 A=again B= C=x y make all # buildkit"
    );
    apply_all(&mut b, &[env(&[("C", "env")])]);
    assert_eq!(
        b.run_created_by(&run(exec(&["make"]))),
        "RUN |3 A=again B= C=env make # buildkit"
    );
    // A later stage built on this one keeps the ARGs.
    let child = ConfigBuilder::from_stage(&b);
    assert_eq!(
        child.run_created_by(&run(shell("true"))),
        "RUN |3 A=again B= C=env /bin/sh -c true # buildkit"
    );
    // No ARGs: no `|0`.
    let plain = ConfigBuilder::scratch(&amd64());
    assert_eq!(
        plain.run_created_by(&run(shell("true"))),
        "RUN /bin/sh -c true # buildkit"
    );
}

/// `dispatchRun` heredoc handling.
#[test]
fn run_heredocs() {
    let b = ConfigBuilder::scratch(&amd64());
    let doc = |name: &str, content: &str| HeredocBody {
        name: name.into(),
        fd: 0,
        content: content.into(),
        expand: true,
    };
    let mut r = run(shell("<<EOF"));
    r.heredocs = vec![doc("EOF", "echo one\necho two\n")];
    assert_eq!(
        b.run_created_by(&r),
        "RUN /bin/sh -c echo one\necho two\n # buildkit"
    );
    r.heredocs = vec![doc("EOF", "#!/usr/bin/env python3\nprint(1)\n")];
    assert_eq!(b.run_args(&r), ["/bin/sh", "-c", "/dev/pipes/EOF"]);
    let mut r = run(shell("cat <<A >/a && cat <<B >/b"));
    r.heredocs = vec![doc("A", "1\n"), doc("B", "2\n")];
    assert_eq!(
        b.run_args(&r),
        ["/bin/sh", "-c", "cat <<A >/a && cat <<B >/b\n1\nA\n2\nB"]
    );
    assert!(is_lone_heredoc("3<<-\"EOF\"") && !is_lone_heredoc("<<EOF > x"));
}

/// `dispatchCopy`: `COPY [--parents] [--chown] [--chmod] <paths> <<heredocs
/// <dest> # buildkit`; `--from` and `--link` are not written.
#[test]
fn copy_history() {
    let b = ConfigBuilder::scratch(&amd64());
    let c = Copy {
        add: false,
        sources: vec![
            Source::Heredoc(0),
            Source::Path("src/*.go".into()),
            Source::Path("go.mod".into()),
        ],
        dest: "/app/".into(),
        from: Some(CopyFrom::Stage(0)),
        chown: Some(Chown {
            user: IdOrName::Name("app".into()),
            group: Some(IdOrName::Id(10)),
        }),
        chmod: Some(Chmod::Octal(0o755)),
        link: true,
        parents: true,
        exclude: vec![],
        checksum: None,
        keep_git_dir: false,
        unpack: None,
        heredocs: vec![HeredocBody {
            name: "notes.txt".into(),
            fd: 0,
            content: "hi\n".into(),
            expand: true,
        }],
    };
    assert_eq!(
        b.copy_created_by(&c),
        "COPY --parents --chown=app:10 --chmod=0755 src/*.go go.mod <<notes.txt /app/ # buildkit"
    );
    let add = Copy {
        add: true,
        sources: vec![Source::Url("https://example.com/a.tgz".into())],
        parents: false,
        chown: None,
        chmod: None,
        heredocs: vec![],
        ..c
    };
    let mut b = b;
    assert_eq!(
        b.apply(&Instruction::Copy(add)).unwrap(),
        Applied::Filesystem {
            created_by: "ADD https://example.com/a.tgz /app/ # buildkit".into()
        }
    );
}

/// `resolveBaseImage` + `dispatchStages`: `created` cleared, fields Go's
/// types do not know dropped, PATH added when missing, base history kept.
#[test]
fn from_image_inherits_like_buildkit() {
    let base =
        ImageConfig::from_bytes(include_bytes!("../../image/testdata/docker-config.json")).unwrap();
    let b = ConfigBuilder::from_image(&base);
    let c = b.config();
    assert!(c.created.is_none() && c.extra.is_empty() && c.config.extra.is_empty());
    assert_eq!(c.history.len(), 4);
    assert_eq!(c.config.env[0], format!("PATH={DEFAULT_PATH_ENV}"));
    assert_eq!(b.base_onbuild_triggers(), ["COPY . /usr/share/nginx/html"]);
    let mut no_path = ImageConfig::for_platform(&amd64());
    no_path.config.env = vec!["A=1".into()];
    assert_eq!(
        ConfigBuilder::from_image(&no_path).config().config.env,
        ["A=1".to_owned(), format!("PATH={DEFAULT_PATH_ENV}")]
    );
}

/// `finalizeResultImage`: an explicit platform replaces os/arch, and the
/// variant when it has one or os/arch differ; the result is normalised.
#[test]
fn platform_rules() {
    let mut img = ImageConfig::for_platform(&parse_platform("linux/arm64").unwrap());
    img.variant = "v8".into();
    let out = ConfigBuilder::from_image(&img).finish_at(vec![], None, t("2024-01-01T00:00:00Z"));
    assert_eq!(out.platform().to_string(), "linux/arm64");
    let out = ConfigBuilder::from_image(&img)
        .with_target_platform(&parse_platform("linux/arm/v6").unwrap())
        .finish_at(vec![], None, t("2024-01-01T00:00:00Z"));
    assert_eq!(out.platform().to_string(), "linux/arm/v6");
    let mut arm = ImageConfig::for_platform(&parse_platform("linux/arm/v5").unwrap());
    arm.variant = "v5".into();
    let out = ConfigBuilder::from_image(&arm)
        .with_target_platform(&Platform {
            os: "linux".into(),
            architecture: "arm".into(),
            variant: None,
        })
        .finish_at(vec![], None, t("2024-01-01T00:00:00Z"));
    assert_eq!(out.variant, "v5");
}

fn digest(n: u8) -> Digest {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
        .parse()
        .unwrap()
}

/// `normalizeLayersAndHistory` + `patchImageConfig` without an epoch:
/// metadata entries before the first new layer take its time, later ones
/// the previous layer's; `created` is the last entry's time.
#[test]
fn history_times_without_epoch() {
    let mut base = ImageConfig::for_platform(&amd64());
    base.rootfs.diff_ids = Some(vec![digest(1)]);
    base.history = vec![History {
        created: Some(t("2023-01-01T00:00:00Z")),
        created_by: "base".into(),
        ..History::default()
    }];
    let mut b = ConfigBuilder::from_image(&base);
    apply_all(&mut b, &[env(&[("A", "1")])]);
    b.add_history_at("RUN x # buildkit", true, t("2024-05-05T05:05:05.5Z"));
    apply_all(&mut b, &[Instruction::User { user: "u".into() }]);
    b.add_history_at("RUN y # buildkit", true, t("2024-05-05T06:00:00Z"));
    apply_all(
        &mut b,
        &[Instruction::Cmd {
            command: exec(&["y"]),
        }],
    );
    let out = b.finish_at(
        vec![digest(1), digest(2), digest(3)],
        None,
        t("2030-01-01T00:00:00Z"),
    );
    let times: Vec<String> = out
        .history
        .iter()
        .map(|h| h.created.unwrap().to_string())
        .collect();
    assert_eq!(
        times,
        [
            "2023-01-01T00:00:00Z",
            "2024-05-05T05:05:05.5Z",
            "2024-05-05T05:05:05.5Z",
            "2024-05-05T05:05:05.5Z",
            "2024-05-05T06:00:00Z",
            "2024-05-05T06:00:00Z"
        ]
    );
    assert_eq!(out.created.unwrap().to_string(), "2024-05-05T06:00:00Z");
    assert_eq!(out.diff_ids().len(), 3);
}

/// The whole config of a small Dockerfile with SOURCE_DATE_EPOCH, byte for
/// byte as BuildKit's exporter writes it (sorted top-level keys, history
/// with `comment` and `empty_layer`, base entries keep their time, `created`
/// is the epoch).
///
/// ```text
/// FROM base            # linux/amd64, one layer, history from 2023
/// ARG V=1
/// ENV APP_HOME=/srv
/// WORKDIR $APP_HOME
/// COPY app /srv/app
/// RUN chmod +x app
/// EXPOSE 8080
/// USER 1000
/// ENTRYPOINT ["./app"]
/// CMD ["--serve"]
/// ```
#[test]
fn whole_config_with_epoch() {
    let mut base = ImageConfig::for_platform(&amd64());
    base.rootfs.diff_ids = Some(vec![digest(1)]);
    base.config.env = vec![format!("PATH={DEFAULT_PATH_ENV}")];
    base.config.cmd = vec!["sh".into()];
    base.history = vec![
        History {
            created: Some(t("2023-06-01T10:00:00.25Z")),
            created_by: "/bin/sh -c #(nop) ADD file:abc in / ".into(),
            ..History::default()
        },
        History {
            created: Some(t("2023-06-01T10:00:01Z")),
            created_by: "/bin/sh -c #(nop)  CMD [\"sh\"]".into(),
            empty_layer: true,
            ..History::default()
        },
    ];
    let mut b = ConfigBuilder::from_image(&base);
    let later = t("2025-01-01T00:00:00Z");
    apply_all(
        &mut b,
        &[
            Instruction::Arg {
                args: vec![arg("V", Some("1"))],
            },
            env(&[("APP_HOME", "/srv")]),
        ],
    );
    let Applied::Filesystem { created_by } = b
        .apply(&Instruction::Workdir {
            path: "/srv".into(),
        })
        .unwrap()
    else {
        panic!("WORKDIR /srv makes a layer")
    };
    b.add_history_at(created_by, true, later);
    let copy = Copy {
        add: false,
        sources: vec![Source::Path("app".into())],
        dest: "/srv/app".into(),
        from: None,
        chown: None,
        chmod: None,
        link: false,
        parents: false,
        exclude: vec![],
        checksum: None,
        keep_git_dir: false,
        unpack: None,
        heredocs: vec![],
    };
    let Applied::Filesystem { created_by } = b.apply(&Instruction::Copy(copy)).unwrap() else {
        panic!("COPY makes a layer")
    };
    b.add_history_at(created_by, true, later);
    let Applied::Filesystem { created_by } = b
        .apply(&Instruction::Run(run(shell("chmod +x app"))))
        .unwrap()
    else {
        panic!("RUN makes a layer")
    };
    b.add_history_at(created_by, true, later);
    apply_all(
        &mut b,
        &[
            Instruction::Expose {
                ports: vec!["8080/tcp".into()],
            },
            Instruction::User {
                user: "1000".into(),
            },
            Instruction::Entrypoint {
                command: exec(&["./app"]),
            },
            Instruction::Cmd {
                command: exec(&["--serve"]),
            },
        ],
    );
    let out = b.finish_at(
        vec![digest(1), digest(2), digest(3), digest(4)],
        Some(t("2024-01-01T00:00:00Z")),
        later,
    );
    let want = concat!(
        r#"{"architecture":"amd64","config":{"User":"1000","ExposedPorts":{"8080/tcp":{}},"#,
        r#""Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","APP_HOME=/srv"],"#,
        r#""Entrypoint":["./app"],"Cmd":["--serve"],"WorkingDir":"/srv","ArgsEscaped":true},"#,
        r#""created":"2024-01-01T00:00:00Z","history":["#,
        r#"{"created":"2023-06-01T10:00:00.25Z","created_by":"/bin/sh -c #(nop) ADD file:abc in / "},"#,
        r#"{"created":"2023-06-01T10:00:01Z","created_by":"/bin/sh -c #(nop)  CMD [\"sh\"]","empty_layer":true},"#,
        r#"{"created":"2024-01-01T00:00:00Z","created_by":"ARG V=1","comment":"buildkit.dockerfile.v0","empty_layer":true},"#,
        r#"{"created":"2024-01-01T00:00:00Z","created_by":"ENV APP_HOME=/srv","comment":"buildkit.dockerfile.v0","empty_layer":true},"#,
        r#"{"created":"2024-01-01T00:00:00Z","created_by":"WORKDIR /srv","comment":"buildkit.dockerfile.v0"},"#,
        r#"{"created":"2024-01-01T00:00:00Z","created_by":"COPY app /srv/app # buildkit","comment":"buildkit.dockerfile.v0"},"#,
        r#"{"created":"2024-01-01T00:00:00Z","created_by":"RUN |1 V=1 /bin/sh -c chmod +x app # buildkit","comment":"buildkit.dockerfile.v0"},"#,
        r#"{"created":"2024-01-01T00:00:00Z","created_by":"EXPOSE [8080/tcp]","comment":"buildkit.dockerfile.v0","empty_layer":true},"#,
        r#"{"created":"2024-01-01T00:00:00Z","created_by":"USER 1000","comment":"buildkit.dockerfile.v0","empty_layer":true},"#,
        r#"{"created":"2024-01-01T00:00:00Z","created_by":"ENTRYPOINT [\"./app\"]","comment":"buildkit.dockerfile.v0","empty_layer":true},"#,
        r#"{"created":"2024-01-01T00:00:00Z","created_by":"CMD [\"--serve\"]","comment":"buildkit.dockerfile.v0","empty_layer":true}],"#,
        r#""os":"linux","rootfs":{"type":"layers","diff_ids":["#,
        r#""sha256:0101010101010101010101010101010101010101010101010101010101010101","#,
        r#""sha256:0202020202020202020202020202020202020202020202020202020202020202","#,
        r#""sha256:0303030303030303030303030303030303030303030303030303030303030303","#,
        r#""sha256:0404040404040404040404040404040404040404040404040404040404040404"]}}"#
    );
    assert_eq!(String::from_utf8(out.to_bytes()).unwrap(), want);
}

/// `patchImageConfig`: with no time anywhere, Go writes `"created":null`;
/// the exporter fixes history that does not match the layers.
#[test]
fn metadata_only_scratch_and_mismatched_history() {
    let mut b = ConfigBuilder::scratch(&amd64());
    apply_all(&mut b, &[Instruction::User { user: "x".into() }]);
    let out = b.clone().finish_at(vec![], None, t("2024-01-01T00:00:00Z"));
    let text = String::from_utf8(out.to_bytes()).unwrap();
    assert!(text.contains(r#""created":null"#), "{text}");
    assert!(text.contains(r#""diff_ids":null"#), "{text}");
    assert!(out.history[0].created.is_none());

    // A layer the history does not know: an exporter entry is appended.
    let out = b
        .clone()
        .finish_at(vec![digest(1)], None, t("2024-01-01T00:00:00Z"));
    assert_eq!(out.history.len(), 2);
    assert_eq!(out.history[1].comment, EXPORTER_HISTORY_COMMENT);
    assert!(!out.history[1].empty_layer);
    // A layer entry without a layer: made empty.
    b.add_history_at("RUN true # buildkit", true, t("2024-01-01T00:00:00Z"));
    let out = b.finish_at(vec![], None, t("2024-01-01T00:00:00Z"));
    assert!(out.history.iter().all(|h| h.empty_layer));
}

/// `--single-snapshot`: every step's entry is recorded empty, then the
/// last filesystem step's is marked as the stage's one layer.
#[test]
fn mark_layer_gives_an_entry_the_stage_layer() {
    let mut base = ImageConfig::for_platform(&amd64());
    base.rootfs.diff_ids = Some(vec![digest(1)]);
    base.history = vec![History {
        created: Some(t("2023-01-01T00:00:00Z")),
        created_by: "base".into(),
        ..History::default()
    }];
    let mut b = ConfigBuilder::from_image(&base);
    b.add_history("RUN a # buildkit", false);
    let last = b.config().history.len();
    b.add_history("RUN b # buildkit", false);
    apply_all(&mut b, &[Instruction::User { user: "u".into() }]);
    b.mark_layer(last);
    b.mark_layer(99);
    let epoch = t("2023-11-14T22:13:20Z");
    let out = b.finish(vec![digest(1), digest(2)], Some(epoch));
    let layers: Vec<(&str, bool)> = out
        .history
        .iter()
        .map(|h| (h.created_by.as_str(), h.empty_layer))
        .collect();
    assert_eq!(
        layers,
        [
            ("base", false),
            ("RUN a # buildkit", true),
            ("RUN b # buildkit", false),
            ("USER u", true),
        ]
    );
    assert_eq!(out.created, Some(epoch));
    assert!(out.history[1..].iter().all(|h| h.created == Some(epoch)));
}
