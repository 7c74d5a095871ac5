//! Planner tests: ARG scoping, stages and targets, typed instructions,
//! and the located errors of bad input.

use super::*;
use crate::dockerfile::parse;

fn opts() -> PlanOptions {
    let mut o = PlanOptions::new();
    o.target_platform = values::parse_platform("linux/arm64").unwrap();
    o.build_platform = values::parse_platform("linux/amd64").unwrap();
    o
}

fn plan_with(text: &str, o: &PlanOptions) -> Result<Plan, PlanError> {
    let df = parse(text.as_bytes(), "Dockerfile").map_err(PlanError::from)?;
    plan(&df, o)
}

fn plan_ok(text: &str) -> Plan {
    plan_with(text, &opts()).unwrap_or_else(|e| panic!("{e}"))
}

fn plan_err(text: &str) -> String {
    match plan_with(text, &opts()) {
        Ok(_) => panic!("planned without error:\n{text}"),
        Err(PlanError::Dockerfile(e)) => e.render(),
        Err(e) => e.to_string(),
    }
}

fn displays(p: &Plan, stage: usize) -> Vec<String> {
    p.stages[stage]
        .steps
        .iter()
        .map(|s| s.instruction.display())
        .collect()
}

#[test]
fn global_args_reach_from_but_not_stages_unless_redeclared() {
    let mut o = opts();
    o.image_env.insert("busybox:1.36".into(), vec![]);
    let text = "ARG TAG=1.36\nARG REPO\nFROM busybox:${TAG}\nRUN echo $TAG\nLABEL a=${TAG:-none}\nARG TAG\nLABEL b=$TAG\n";
    let p = plan_with(text, &o).unwrap();
    assert_eq!(p.stages[0].base, Base::Image("busybox:1.36".into()));
    assert_eq!(displays(&p, 0)[1], "LABEL a=none");
    assert_eq!(displays(&p, 0)[3], "LABEL b=1.36");
    assert_eq!(p.global_args.len(), 2);
}

#[test]
fn build_args_override_defaults_and_unused_ones_warn() {
    let mut o = opts();
    o.build_args.insert("V".into(), "from-cli".into());
    o.build_args.insert("NOPE".into(), "x".into());
    o.build_args.insert("HTTP_PROXY".into(), "http://p".into());
    let p = plan_with("FROM scratch\nARG V=default\nENV X=$V\n", &o).unwrap();
    assert_eq!(displays(&p, 0)[1], "ENV X=from-cli");
    let w: Vec<_> = p.warnings.iter().map(|w| w.message.clone()).collect();
    assert!(
        w.iter()
            .any(|m| m.contains("NOPE") && !m.contains("HTTP_PROXY")),
        "{w:?}"
    );
}

#[test]
fn platform_args_are_predefined_globally() {
    let mut o = opts();
    o.image_env.insert("busybox".into(), vec![]);
    let text = "FROM --platform=$BUILDPLATFORM busybox AS b\nARG TARGETARCH\nARG BUILDOS\nENV A=$TARGETARCH B=$BUILDOS C=$TARGETOS\n";
    let p = plan_with(text, &o).unwrap();
    assert_eq!(
        p.stages[0].platform.as_ref().unwrap().to_string(),
        "linux/amd64"
    );
    assert_eq!(displays(&p, 0)[2], "ENV A=arm64 B=linux C=\"\"");
}

#[test]
fn env_in_one_instruction_sees_old_values() {
    let p = plan_ok("FROM scratch\nENV a=1\nENV a=2 b=$a\nENV c=\"x y\" d='$a'\n");
    assert_eq!(displays(&p, 0)[1], "ENV a=2 b=1");
    assert_eq!(displays(&p, 0)[2], "ENV c=\"x y\" d=$a");
}

#[test]
fn env_overrides_arg_declared_before_it() {
    let p = plan_ok("FROM scratch\nARG V=arg\nENV V=env\nLABEL v=$V\n");
    assert_eq!(displays(&p, 0)[2], "LABEL v=env");
}

#[test]
fn child_stage_inherits_env_and_args() {
    let p = plan_ok("FROM scratch AS a\nARG X=1\nENV Y=2\nFROM a\nLABEL x=$X y=$Y\n");
    assert_eq!(displays(&p, 1)[0], "LABEL x=1 y=2");
    assert_eq!(p.stages[1].base, Base::Stage(0));
}

#[test]
fn target_keeps_only_needed_stages_in_dependency_order() {
    let text = "FROM busybox AS tools\nRUN true\nFROM busybox AS unused\nFROM scratch AS out\nCOPY --from=tools /bin /bin\nFROM out AS final\nRUN --mount=from=tools,target=/t true\n";
    let p = plan_ok(text);
    assert_eq!(p.order, vec![0, 2, 3]);
    assert!(!p.stages[1].needed);
    let mut o = opts();
    o.target = Some("OUT".into());
    let p = plan_with(text, &o).unwrap();
    assert_eq!((p.target, p.order.clone()), (2, vec![0, 2]));
}

#[test]
fn copy_from_later_stage_and_index() {
    let p = plan_ok(
        "FROM scratch AS a\nCOPY --from=c /x /x\nFROM scratch AS b\nCOPY --from=0 /y /y\nFROM alpine:3 AS c\nFROM scratch\nCOPY --from=b /z /z\n",
    );
    assert_eq!(p.order, vec![2, 0, 1, 3]);
    let p2 = plan_ok(
        "FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\nCOPY --from=nginx:1 /y /y\n",
    );
    assert_eq!(p2.order, vec![1]);
    match &p2.stages[1].steps[0].instruction {
        Instruction::Copy(c) => assert_eq!(c.from, Some(CopyFrom::Image("nginx:1".into()))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn cycles_are_errors_naming_the_stages() {
    let e = plan_err(
        "FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\nCOPY --from=a /y /y\n",
    );
    assert!(
        e.contains("circular dependency between stages: a -> b -> a"),
        "{e}"
    );
    // Also among stages the target does not need, as BuildKit does.
    let e = plan_err(
        "FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\nCOPY --from=a /y /y\nFROM scratch\n",
    );
    assert!(e.contains("circular dependency"), "{e}");
}

#[test]
fn unknown_target_lists_stages() {
    let mut o = opts();
    o.target = Some("nope".into());
    let e = plan_with("FROM scratch AS a\nFROM scratch AS b\n", &o)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "--target \"nope\" names no stage of Dockerfile: its stages are a, b"
    );
}

#[test]
fn unknown_instruction_suggests_nearest() {
    let e = plan_err("FROM scratch\nRNU echo\n");
    assert!(
        e.starts_with("Dockerfile:2:1: unknown instruction \"RNU\" (did you mean \"RUN\"?)"),
        "{e}"
    );
    assert!(e.contains("2 | RNU echo\n  | ^^^"), "{e}");
    let e = plan_err("FROM scratch\nCOPPY a b\n");
    assert!(e.contains("did you mean \"COPY\""), "{e}");
}

#[test]
fn misplaced_and_unknown_flags_name_instruction_and_flag() {
    let e = plan_err("FROM scratch\nRUN --from=a true\n");
    assert!(
        e.contains("Dockerfile:2:5: flag --from is not valid for RUN: it belongs to COPY"),
        "{e}"
    );
    let e = plan_err("FROM scratch\nCOPY --bogus=1 a b\n");
    assert!(e.contains("unknown flag --bogus for COPY"), "{e}");
    let e = plan_err("FROM scratch\nADD --from=x a b\n");
    assert!(e.contains("--from is not valid for ADD"), "{e}");
}

#[test]
fn instruction_before_from() {
    let e = plan_err("RUN true\nFROM scratch\n");
    assert!(e.contains("RUN before the first FROM"), "{e}");
}

#[test]
fn heredocs_on_copy_and_run() {
    let p = plan_ok(
        "FROM scratch\nARG N=kiln\nCOPY <<EOF <<'RAW' /etc/\nhello $N \"q\"\nEOF\nraw $N\nRAW\nRUN <<-EOT sh\n\techo hi\n\tEOT\n",
    );
    match &p.stages[0].steps[1].instruction {
        Instruction::Copy(c) => {
            assert_eq!(c.sources, vec![Source::Heredoc(0), Source::Heredoc(1)]);
            assert_eq!(c.heredocs[0].content, "hello kiln \"q\"\n");
            assert_eq!(c.heredocs[1].content, "raw $N\n");
        }
        other => panic!("{other:?}"),
    }
    match &p.stages[0].steps[2].instruction {
        Instruction::Run(r) => {
            assert_eq!(r.command, Command::Shell("<<-EOT sh".into()));
            assert_eq!(r.heredocs[0].content, "echo hi\n");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn copy_flags_are_typed() {
    let p = plan_ok(
        "FROM scratch\nARG U=app\nCOPY --chown=$U:staff --chmod=u=rwX,go=rX --link --parents --exclude=*.md a/ b/ /dst/\nADD --checksum=sha256:abcd https://example.com/x.tgz /x\nADD --keep-git-dir https://github.com/a/b.git#main /src\n",
    );
    match &p.stages[0].steps[1].instruction {
        Instruction::Copy(c) => {
            assert!(c.link && c.parents);
            assert_eq!(c.exclude, vec!["*.md"]);
            assert_eq!(c.chown.as_ref().unwrap().to_string(), "app:staff");
        }
        other => panic!("{other:?}"),
    }
    match &p.stages[0].steps[2].instruction {
        Instruction::Copy(c) => assert_eq!(
            c.sources,
            vec![Source::Url("https://example.com/x.tgz".into())]
        ),
        other => panic!("{other:?}"),
    }
    match &p.stages[0].steps[3].instruction {
        Instruction::Copy(c) => assert!(matches!(c.sources[0], Source::Git(_)) && c.keep_git_dir),
        other => panic!("{other:?}"),
    }
}

#[test]
fn copy_errors() {
    assert!(plan_err("FROM scratch\nCOPY a\n").contains("COPY requires at least two arguments"));
    assert!(plan_err("FROM scratch\nCOPY a b c\n").contains("destination must be a directory"));
    assert!(plan_err("FROM scratch\nCOPY https://x/y /y\n").contains("use ADD instead"));
    assert!(plan_err("FROM scratch\nCOPY --from=$X a /b\n").contains("may not use variables"));
    assert!(plan_err("FROM scratch\nCOPY --from=5 a /b\n").contains("invalid stage index 5"));
    assert!(
        plan_err("FROM scratch\nADD --checksum=sha256:ab a /b\n")
            .contains("URL and Git sources only")
    );
    assert!(plan_err("FROM scratch\nCOPY --chmod=abc a /b\n").contains("Dockerfile:2:6"));
}

#[test]
fn run_mounts_network_and_security() {
    let p = plan_ok(
        "FROM scratch\nARG C=/cache\nRUN --mount=type=cache,target=$C,id=x --mount=type=secret,id=tok --network=none --security=insecure true\n",
    );
    match &p.stages[0].steps[1].instruction {
        Instruction::Run(r) => {
            assert_eq!(r.mounts.len(), 2);
            assert_eq!(r.mounts[0].target.as_deref(), Some("/cache"));
            assert_eq!(r.network, Network::None);
            assert_eq!(r.security, Security::Insecure);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        plan_err("FROM scratch\nRUN --mount=type=bogus,target=/x true\n")
            .contains("Dockerfile:2:13: RUN --mount: unsupported mount type \"bogus\"")
    );
    assert!(plan_err("FROM scratch\nRUN --network=weird true\n").contains("Dockerfile:2:5"));
}

#[test]
fn healthcheck_forms() {
    let p = plan_ok(
        "FROM scratch\nHEALTHCHECK NONE\nHEALTHCHECK --interval=5s --retries=2 --start-interval=1s CMD [\"/bin/check\"]\nHEALTHCHECK CMD curl -f localhost\n",
    );
    assert_eq!(displays(&p, 0)[0], "HEALTHCHECK NONE");
    assert!(matches!(
        &p.stages[0].steps[1].instruction,
        Instruction::Healthcheck(Healthcheck::Cmd {
            command: Command::Exec(_),
            ..
        })
    ));
    assert!(
        plan_err("FROM scratch\nHEALTHCHECK FOO x\n")
            .contains("unknown type \"FOO\" in HEALTHCHECK")
    );
    assert!(plan_err("FROM scratch\nHEALTHCHECK --interval=abc CMD x\n").contains("HEALTHCHECK"));
}

#[test]
fn onbuild_rules() {
    let p = plan_ok("FROM scratch\nONBUILD COPY --from=x a /b\n");
    assert_eq!(displays(&p, 0)[0], "ONBUILD COPY --from=x a /b");
    assert!(plan_err("FROM scratch\nONBUILD ONBUILD RUN x\n").contains("isn't allowed"));
    assert!(
        plan_err("FROM scratch\nONBUILD FROM x\n")
            .contains("FROM isn't allowed as an ONBUILD trigger")
    );
}

#[test]
fn metadata_instructions() {
    let p = plan_ok(
        "FROM scratch\nARG P=8080\nEXPOSE $P 53/udp\nUSER 1000:1000\nWORKDIR /app\nVOLUME [\"/data\", \"/logs\"]\nSTOPSIGNAL SIGINT\nSHELL [\"/bin/bash\", \"-c\"]\nCMD [\"run\"]\nENTRYPOINT /bin/app\nMAINTAINER someone\n",
    );
    let d = displays(&p, 0);
    assert_eq!(d[1], "EXPOSE 8080/tcp 53/udp");
    assert_eq!(d[5], "STOPSIGNAL SIGINT");
    assert_eq!(d[7], "CMD [\"run\"]");
    assert!(
        p.warnings
            .iter()
            .any(|w| w.message.contains("MAINTAINER is deprecated"))
    );
    assert!(plan_err("FROM scratch\nSHELL /bin/sh\n").contains("JSON form"));
}

#[test]
fn from_errors() {
    assert!(plan_err("FROM a b\n").contains("FROM requires either one or three arguments"));
    assert!(plan_err("FROM a AS 1x\n").contains("invalid name for build stage"));
    assert!(plan_err("ARG X\nFROM $X\n").contains("should not be blank"));
    assert!(plan_err("FROM --platform=linux/amd64/v2/x busybox\n").contains("FROM --platform"));
}

#[test]
fn undefined_variables_warn_only_when_env_is_known() {
    let p = plan_ok("FROM scratch\nENV A=$UNDEFINED\n");
    assert!(p.warnings.iter().any(|w| w.message.contains("$UNDEFINED")));
    let p = plan_ok("FROM busybox\nENV A=$MAYBE_IN_IMAGE\n");
    assert!(
        !p.warnings
            .iter()
            .any(|w| w.message.contains("MAYBE_IN_IMAGE"))
    );
    let mut o = opts();
    o.image_env
        .insert("busybox".into(), vec![("PATH".into(), "/bin".into())]);
    let p = plan_with("FROM busybox\nENV PATH=$PATH:/x\n", &o).unwrap();
    assert_eq!(displays(&p, 0)[0], "ENV PATH=/bin:/x");
}

#[test]
fn bad_expansion_is_located() {
    let e = plan_err("FROM scratch\nENV A=${B:=x}\n");
    assert!(e.starts_with("Dockerfile:2:"), "{e}");
}

fn rules(p: &Plan) -> Vec<String> {
    p.warnings.iter().filter_map(|w| w.rule.clone()).collect()
}

#[test]
fn build_checks_report_named_rules() {
    let p = plan_ok(
        "FROM scratch as Build\nENV API_TOKEN abc\nWORKDIR app\nCMD run\nCMD [\"run\"]\nrun true\nFROM --platform=$TARGETPLATFORM scratch\nCOPY \\\n\n a /b\nMAINTAINER me\nLABEL x=$NOPE\nEXPOSE 80/TCP\n",
    );
    let r = rules(&p);
    for rule in [
        "StageNameCasing",
        "FromAsCasing",
        "LegacyKeyValueFormat",
        "SecretsUsedInArgOrEnv",
        "WorkdirRelativePath",
        "JSONArgsRecommended",
        "MultipleInstructionsDisallowed",
        "ConsistentInstructionCasing",
        "RedundantTargetPlatform",
        "NoEmptyContinuation",
        "MaintainerDeprecated",
        "UndefinedVar",
        "ExposeProtoCasing",
    ] {
        assert!(r.iter().any(|x| x == rule), "{rule} missing from {r:?}");
    }
    let p = plan_ok("ARG A\nFROM busybox:$A$B\n");
    assert_eq!(rules(&p), vec!["UndefinedArgInFrom"]);
    let p = plan_ok("FROM scratch AS a\nFROM scratch AS a\n");
    assert_eq!(rules(&p), vec!["DuplicateStageName"]);
}

#[test]
fn check_directive_skips_and_errors() {
    let p = plan_ok("# check=skip=JSONArgsRecommended\nFROM scratch\nCMD run\n");
    assert!(rules(&p).is_empty(), "{:?}", p.warnings);
    let e = plan_err("# check=error=true\nFROM scratch\nCMD run\n");
    assert!(
        e.contains("Dockerfile:3:1: lint violations found for rules: JSONArgsRecommended"),
        "{e}"
    );
    let p = plan_ok("# check=skip=all;error=true\nFROM scratch\nCMD run\n");
    assert!(p.warnings.is_empty());
    let e = plan_err("# check=error=maybe\nFROM scratch\n");
    assert!(
        e.starts_with("Dockerfile:1:1: invalid check directive"),
        "{e}"
    );
    let mut o = opts();
    o.build_args
        .insert("BUILDKIT_DOCKERFILE_CHECK".into(), "error=true".into());
    assert!(plan_with("# check=skip=all\nFROM scratch\nCMD run\n", &o).is_err());
}

#[test]
fn unknown_image_env_keeps_variables_as_written() {
    let p = plan_ok("FROM busybox\nENV PATH=$PATH:/opt/bin\nARG V=1\nLABEL v=$V\n");
    assert_eq!(displays(&p, 0)[0], "ENV PATH=$PATH:/opt/bin");
    assert_eq!(displays(&p, 0)[2], "LABEL v=1");
}

proptest::proptest! {
    #[test]
    fn planner_never_panics(
        text in "((FROM|RUN|COPY|ADD|ENV|ARG|LABEL|ONBUILD|HEALTHCHECK|CMD|EXPOSE|WORKDIR|USER|VOLUME|SHELL| AS |scratch|busybox|--from=|--mount=|--chmod=|--platform=|type=|cache|target=|\\$[A-Z]|\\$\\{[A-Z]:?[-+?#%/]|<<EOF|EOF|[ \"'\n=,:{}\\[\\]a-z0-9/.-])){0,60}"
    ) {
        if let Ok(df) = parse(text.as_bytes(), "Dockerfile") {
            let mut o = opts();
            o.target = Some("a".into());
            let _ = plan(&df, &opts());
            let _ = plan(&df, &o);
        }
    }
}

fn with_triggers(image: &str, env: &[(&str, &str)], triggers: &[&str]) -> PlanOptions {
    let mut o = opts();
    o.image_env.insert(
        image.into(),
        env.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    o.image_triggers.insert(
        image.into(),
        triggers.iter().map(|t| t.to_string()).collect(),
    );
    o
}

#[test]
fn image_triggers_come_first_and_expand_with_the_stage_scope() {
    let o = with_triggers(
        "base:1",
        &[("APP", "/srv/app")],
        &[
            "COPY app.txt $APP/",
            "ENV FROM_TRIGGER=yes",
            "RUN echo built > $APP/marker",
        ],
    );
    let p = plan_with("FROM base:1\nWORKDIR /w/$FROM_TRIGGER\n", &o).unwrap();
    let steps = &p.stages[0].steps;
    assert_eq!(steps.len(), 4);
    assert!(steps[..3].iter().all(|s| s.onbuild && s.line == 1));
    assert!(!steps[3].onbuild);
    assert_eq!(
        displays(&p, 0),
        [
            "COPY app.txt /srv/app/",
            "ENV FROM_TRIGGER=yes",
            // RUN text is the shell's to expand.
            "RUN echo built > $APP/marker",
            // The trigger's ENV reaches the stage's own instructions.
            "WORKDIR /w/yes",
        ]
    );
    assert_eq!(steps[0].source, "COPY app.txt $APP/");
}

#[test]
fn triggers_see_the_parent_stage_args_but_not_later_ones() {
    let p = plan_ok(
        "FROM scratch AS base\nARG V=parent\nONBUILD LABEL v=$V w=$W\nLABEL own=1\n\
         FROM base\nARG W=late\nLABEL after=$W\n",
    );
    // The parent's ONBUILD is recorded there, not run there.
    assert_eq!(displays(&p, 0)[1], "ONBUILD LABEL v=$V w=$W");
    assert!(p.stages[0].steps.iter().all(|s| !s.onbuild));
    let child = displays(&p, 1);
    assert_eq!(child[0], "LABEL v=parent w=\"\"");
    assert!(p.stages[1].steps[0].onbuild);
    assert_eq!(child[2], "LABEL after=late");
    // A grandchild does not run them again.
    let p = plan_ok("FROM scratch AS a\nONBUILD LABEL x=1\nFROM a AS b\nFROM b\n");
    assert_eq!(p.stages[1].steps.len(), 1);
    assert!(p.stages[2].steps.is_empty());
}

#[test]
fn trigger_copy_from_names_a_stage_of_the_downstream_dockerfile() {
    let o = with_triggers("base:1", &[], &["COPY --from=assets /a /a"]);
    let p = plan_with("FROM scratch AS assets\nFROM base:1\n", &o).unwrap();
    match &p.stages[1].steps[0].instruction {
        Instruction::Copy(c) => assert_eq!(c.from, Some(CopyFrom::Stage(0))),
        other => panic!("{other:?}"),
    }
    assert_eq!(p.stages[1].depends_on, [0]);
    assert_eq!(p.order, [0, 1]);
}

#[test]
fn bad_triggers_name_the_base_and_the_trigger() {
    for (trigger, expected) in [
        ("ONBUILD RUN x", "chaining ONBUILD"),
        ("FROM busybox", "FROM isn't allowed as an ONBUILD trigger"),
        (
            "MAINTAINER me",
            "MAINTAINER isn't allowed as an ONBUILD trigger",
        ),
        ("RNU x", "unknown instruction"),
        ("COPY onlyone", "COPY requires at least two arguments"),
        ("RUN <<EOF", "EOF"),
    ] {
        let o = with_triggers("reg.example/base:1", &[], &[trigger]);
        let e = plan_with("FROM reg.example/base:1 AS app\nRUN true\n", &o).unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(e, PlanError::Trigger { .. }),
            "{trigger}: not a trigger error: {text}"
        );
        assert!(text.contains("base image reg.example/base:1"), "{text}");
        assert!(text.contains(&format!("{trigger:?}")), "{text}");
        assert!(text.contains("stage app"), "{text}");
        assert!(text.contains(expected), "{trigger}: {text}");
        assert!(!text.contains("Dockerfile:"), "{text}");
    }
    let e = plan_err("FROM scratch AS a\nONBUILD COPY onlyone\nFROM a\n");
    assert!(e.contains("of stage a"), "{e}");
}

#[test]
fn onbuild_heredocs_are_stored_with_their_bodies_and_run() {
    let p = plan_ok("FROM scratch AS a\nONBUILD RUN <<EOF\necho hi\nEOF\nFROM a\n");
    match &p.stages[0].steps[0].instruction {
        Instruction::Onbuild { trigger } => assert_eq!(trigger, "RUN <<EOF\necho hi\nEOF"),
        other => panic!("{other:?}"),
    }
    match &p.stages[1].steps[0].instruction {
        Instruction::Run(r) => assert_eq!(r.heredocs[0].content, "echo hi\n"),
        other => panic!("{other:?}"),
    }
}
