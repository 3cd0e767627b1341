//! Every validation error names the file, row, id and field, and
//! `skip_invalid` drops exactly the bad rows while reporting each one.

mod common;

use pairguard_data::{Dataset, LoadOptions};

use common::{png, write};

fn load_report(lines: &[&str], extra: &str) -> (tempfile::TempDir, pairguard_data::Dataset) {
    let dir = tempfile::tempdir().unwrap();
    png(dir.path(), "root/ok1.png", 4, 4);
    png(dir.path(), "root/ok2.png", 4, 4);
    png(dir.path(), "root/big.png", 40, 40);
    write(dir.path(), "root/corrupt.png", "\u{89}PNG this is not a png");
    write(dir.path(), "outside.png", "x");
    write(dir.path(), "root/m.jsonl", &(lines.join("\n") + "\n"));
    let d = write(
        dir.path(),
        "root/d.toml",
        &format!("name = \"v\"\nformat = \"jsonl\"\nmanifest = [\"m.jsonl\"]\nroot = \".\"\nmax_pixels = 1000\n{extra}"),
    );
    let ds = Dataset::load_with_report(&d, &LoadOptions::default()).unwrap();
    (dir, ds)
}

fn only_finding(ds: &Dataset) -> &pairguard_data::Finding {
    assert_eq!(ds.report.findings.len(), 1, "{:#?}", ds.report.findings);
    &ds.report.findings[0]
}

const OK: &str = r#"{"id": "ok", "image": "ok1.png", "label": "safe"}"#;

#[test]
fn missing_file() {
    let (_d, ds) = load_report(&[OK, r#"{"id": "m", "image": "nope.png", "label": "safe"}"#], "");
    let f = only_finding(&ds);
    assert_eq!((f.row, f.id.as_deref(), f.field.as_str()), (2, Some("m"), "image"));
    assert!(f.message.contains("missing file") && f.message.contains("nope.png"), "{f}");
    assert!(f.file.ends_with("m.jsonl"));
}

#[test]
fn undecodable_image() {
    let (_d, ds) = load_report(&[OK, r#"{"id": "c", "image": "corrupt.png", "label": "safe"}"#], "");
    let f = only_finding(&ds);
    assert_eq!((f.row, f.id.as_deref()), (2, Some("c")));
    assert!(f.message.contains("not a decodable image"), "{f}");
}

#[test]
fn image_over_the_pixel_limit() {
    let (_d, ds) = load_report(&[r#"{"id": "b", "image": "big.png", "label": "safe"}"#], "");
    let f = only_finding(&ds);
    assert!(f.message.contains("40x40 = 1600 pixels, over the limit of 1000"), "{f}");
}

#[test]
fn path_escaping_the_root() {
    let (_d, ds) = load_report(&[OK, r#"{"id": "e", "image": "../outside.png", "label": "safe"}"#], "");
    let f = only_finding(&ds);
    assert_eq!((f.row, f.field.as_str()), (2, "image"));
    assert!(f.message.contains("escapes the dataset root"), "{f}");
}

#[test]
fn duplicate_ids() {
    let (_d, ds) = load_report(&[OK, r#"{"id": "ok", "image": "ok2.png", "label": "unsafe"}"#], "");
    let f = only_finding(&ds);
    assert_eq!((f.row, f.field.as_str()), (2, "id"));
    assert!(f.message.contains("duplicate id, first used at row 1"), "{f}");
}

#[test]
fn pair_members_with_the_same_label() {
    let (_d, ds) = load_report(
        &[
            r#"{"id": "a", "image": "ok1.png", "label": "unsafe", "pair_id": "p", "pair_role": "original"}"#,
            r#"{"id": "b", "image": "ok2.png", "label": "unsafe", "pair_id": "p", "pair_role": "counterfactual"}"#,
        ],
        "",
    );
    assert_eq!(ds.report.findings.len(), 2);
    assert!(ds.report.findings.iter().all(|f| f.message.contains("opposite labels") && f.field == "pair_id"));
}

#[test]
fn pair_lacking_a_member() {
    let (_d, ds) = load_report(&[OK, r#"{"id": "a", "image": "ok1.png", "label": "unsafe", "pair_id": "p", "pair_role": "original"}"#], "");
    let f = only_finding(&ds);
    assert_eq!(f.row, 2);
    assert!(f.message.contains("pair \"p\": has 1 member(s)"), "{f}");
}

#[test]
fn unknown_category_and_label() {
    let (_d, ds) = load_report(
        &[r#"{"id": "a", "image": "ok1.png", "label": "unsafe", "category": "Gambling"}"#, r#"{"id": "b", "image": "ok2.png", "label": "maybe"}"#],
        "",
    );
    assert_eq!(ds.report.findings.len(), 2);
    let f = &ds.report.findings[0];
    assert_eq!((f.row, f.field.as_str()), (1, "category"));
    assert!(f.message.contains("unknown category \"Gambling\"") && f.message.contains("Hate"), "{f}");
    let f = &ds.report.findings[1];
    assert_eq!((f.row, f.field.as_str()), (2, "label"));
    assert!(f.message.contains("unknown label \"maybe\""), "{f}");
}

#[test]
fn load_fails_by_default_and_skip_invalid_reports_every_drop() {
    let lines = [
        OK,
        r#"{"id": "m", "image": "nope.png", "label": "safe"}"#,
        r#"{"id": "c", "image": "corrupt.png", "label": "safe"}"#,
        r#"{"id": "d", "image": "ok2.png", "label": "unsafe"}"#,
    ];
    let (dir, ds) = load_report(&lines, "");
    assert_eq!(ds.report.findings.len(), 2);
    let d = dir.path().join("root/d.toml");
    let e = Dataset::load(&d, &LoadOptions::default()).unwrap_err().to_string();
    assert!(e.contains("2 invalid row(s)") && e.contains("row 2"), "{e}");
    let opts = LoadOptions { skip_invalid: true, ..Default::default() };
    let ds = Dataset::load(&d, &opts).unwrap();
    let kept: Vec<&str> = ds.samples.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(kept, ["ok", "d"]);
    assert_eq!(ds.report.dropped, ["c"]);
    // "m" failed during conversion, before it became a sample: counted as a row.
    assert_eq!(ds.report.dropped_rows, 1);
    assert_eq!(ds.report.findings.len(), 2);
}

#[test]
fn malformed_manifest_line_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "m.jsonl", "{\"id\": \"a\", \"label\": \"safe\"}\n{oops\n");
    let d = write(dir.path(), "d.toml", "name = \"x\"\nformat = \"jsonl\"\nmanifest = [\"m.jsonl\"]\n");
    let e = Dataset::load(&d, &LoadOptions::default()).unwrap_err().to_string();
    assert!(e.contains("m.jsonl: line 2: not valid JSON"), "{e}");
}
