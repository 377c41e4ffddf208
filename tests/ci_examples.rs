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
