//! The results table: its labels, rows and legend line.

use super::fixture::sample_results;
use super::report::{LEGEND, workload_label};
use super::workload::Workload;

#[test]
fn labels_say_size_pattern_direction_and_depth() {
    let l = |s: &str| workload_label(&Workload::parse(s).unwrap());
    assert_eq!(l("randread-4k-qd1"), "4K rand read QD1");
    assert_eq!(l("read-1m-qd4"), "1M seq read QD4");
    assert_eq!(l("write-128k-qd4"), "128K seq write QD4");
    assert_eq!(l("randwrite-512-qd2"), "512B rand write QD2");
}

#[test]
fn table_has_every_row_and_the_legend() {
    let r = sample_results();
    let t = r.table(0.2);
    assert_eq!(t.lines().filter(|l| l.starts_with("randread-4k-qd1 ")).count(), 3, "{t}");
    let legend = t.lines().find(|l| l.starts_with("cold:")).expect("legend line");
    assert_eq!(legend, LEGEND);
    for word in ["cold:", "hot:", "CPU-copied B/B:"] {
        assert!(LEGEND.contains(word));
    }
    assert!(t.contains("n/a"), "fio rows cannot tell copied bytes: {t}");
}

#[test]
fn the_checker_rejects_broken_markup() {
    for bad in ["<p>a</b>", "<p>a & b</p>", "<p><br></p>", "<p>x</p><p>y</p>"] {
        let opts = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
        assert!(roxmltree::Document::parse_with_options(bad, opts).is_err(), "{bad}");
    }
}
