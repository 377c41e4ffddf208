//! The CI templates in `examples/` parse as YAML and run headroom the way the README says.

use serde_json::Value;

fn load(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_saphyr::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn gitlab_pipeline_runs_publishes_and_reports() {
    let y = load("gitlab-ci.yml");
    let job = &y["capacity-forecast"];
    let script = job["script"][0].as_str().unwrap();
    assert!(script.starts_with("headroom run") && script.contains("--fail-on hard"), "{script}");
    // The flags are the real CLI's (the issue sync included).
    use clap::Parser;
    let cli = headroom::cli::Cli::try_parse_from(script.split_whitespace()).unwrap_or_else(|e| panic!("{script}: {e}"));
    let headroom::cli::Command::Run(args) = cli.command else { panic!("{script}: not a run") };
    assert!(args.issues, "{script}");
    // The commented [issues] section is a config headroom accepts.
    let text = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gitlab-ci.yml"))
        .unwrap();
    let section: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("#   [issues]"))
        .take_while(|l| l.starts_with("#   "))
        .map(|l| l.trim_start_matches("#   "))
        .collect();
    let config = format!(
        "[sources.f]\nkind = \"files\"\npath = \"x.csv\"\n[[resources]]\nsource = \"f\"\n{}",
        section.join("\n")
    );
    let parsed = headroom::config::parse(&config, std::path::Path::new("headroom.toml")).unwrap();
    assert_eq!(parsed.issues.unwrap().token_env, "HEADROOM_GITLAB_TOKEN");
    assert_eq!(job["artifacts"]["reports"]["junit"], "reports/junit.xml");
    assert_eq!(job["artifacts"]["when"], "always");
    assert_eq!(y["pages"]["artifacts"]["paths"][0], "public");
    assert_eq!(y["pages"]["when"], "always");
    assert!(y[".headroom"]["rules"].as_array().unwrap().iter().any(|r| r["if"].as_str().unwrap().contains("schedule")));
}

#[test]
fn k8s_cronjob_runs_headroom_daily() {
    let y = load("k8s-cronjob.yaml");
    assert_eq!(y["kind"], "CronJob");
    assert!(y["spec"]["schedule"].as_str().unwrap().split(' ').count() == 5);
    let c = &y["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(args[0], "run");
    assert!(args.windows(2).any(|w| w == ["--fail-on", "hard"]));
    assert!(c["env"][0]["valueFrom"]["secretKeyRef"].is_object(), "secrets from a Secret, not the config");
}

#[test]
fn gitlab_sharded_pipeline_splits_and_merges() {
    let y = load("gitlab-ci-sharded.yml");
    let shard = &y["capacity-forecast"];
    assert_eq!(shard["parallel"], 4);
    let script = shard["script"][0].as_str().unwrap();
    assert!(script.contains("--shard $CI_NODE_INDEX/$CI_NODE_TOTAL") && script.contains("--out shards/$CI_NODE_INDEX"));
    assert_eq!(shard["allow_failure"]["exit_codes"][0], 2);
    let merge = &y["capacity-merge"];
    let script = merge["script"][0].as_str().unwrap();
    assert!(script.starts_with("headroom merge shards/* --out reports") && script.contains("--fail-on hard"));
    assert_eq!(merge["needs"][0]["job"], "capacity-forecast");
    assert_eq!(merge["artifacts"]["reports"]["junit"], "reports/junit.xml");
    assert_eq!(y["pages"]["needs"][0]["job"], "capacity-merge");
}

#[test]
fn k8s_indexed_job_shards_and_a_job_merges() {
    let y = load("k8s-indexed-job.yaml");
    assert_eq!(y["spec"]["completionMode"], "Indexed");
    let n = y["spec"]["completions"].as_u64().unwrap();
    let c = &y["spec"]["template"]["spec"]["containers"][0];
    let script = c["args"][0].as_str().unwrap();
    // The 0-based completion index becomes the 1-based shard.
    assert!(script.contains("I=$((JOB_COMPLETION_INDEX + 1))"), "{script}");
    assert!(script.contains(&format!("--shard $I/{n}")) && script.contains("--out /reports/shards/$I"), "{script}");
    let m = load("k8s-merge-job.yaml");
    let args: Vec<&str> = m["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "merge");
    let shards: Vec<String> = (1..=n).map(|i| format!("/reports/shards/{i}")).collect();
    assert_eq!(args[1..=n as usize], shards.iter().map(String::as_str).collect::<Vec<_>>()[..]);
    assert!(args.windows(2).any(|w| w == ["--fail-on", "hard"]));
}
