//! The metric code against scikit-learn on random inputs with ties and
//! scores on the calibration bins' edges (fixture made by
//! tests/fixtures/gen_metrics.py), within 1e-9.

use pairguard_model::metrics;

#[test]
fn metrics_match_scikit_learn() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/metrics.json")).unwrap();
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for (k, c) in cases.iter().enumerate() {
        let scores: Vec<f64> = c["scores"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let labels: Vec<bool> = c["labels"].as_array().unwrap().iter().map(|v| v.as_bool().unwrap()).collect();
        let m = metrics::binary(&scores, &labels, c["threshold"].as_f64().unwrap(), c["fpr_target"].as_f64().unwrap());
        for (name, ours) in [
            ("auroc", m.auroc),
            ("auprc", m.auprc),
            ("accuracy", m.accuracy),
            ("balanced_accuracy", m.balanced_accuracy),
            ("precision", m.precision),
            ("recall", m.recall),
            ("f1", m.f1),
            ("tpr_at_fpr", m.tpr_at_fpr),
            ("ece", m.ece),
        ] {
            let theirs = c[name].as_f64().unwrap();
            assert!((ours - theirs).abs() < 1e-9, "case {k}: {name} = {ours}, scikit-learn says {theirs}");
        }
    }
}
