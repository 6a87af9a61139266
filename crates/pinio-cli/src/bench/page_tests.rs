//! The results page as a whole: the table and the inlined plot in one
//! well-formed XHTML document.

use super::fixture::sample_results;
use super::plot::svg;
use super::report::LEGEND;

fn parse(html: &str) -> roxmltree::Document<'_> {
    let opts = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
    roxmltree::Document::parse_with_options(html, opts).unwrap_or_else(|e| panic!("not well-formed: {e}\n{html}"))
}

#[test]
fn html_is_well_formed_and_complete() {
    let mut r = sample_results();
    r.contenders_mut()[2].label = "fio <uring> & \"fixed\"";
    let svg = svg(&r);
    let html = r.html("256 MiB scratch file /var/tmp/x & y, 1 s per run", 0.2, &svg);
    let doc = parse(&html);
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "html");
    assert_eq!(root.tag_name().namespace(), Some("http://www.w3.org/1999/xhtml"));
    let table = doc.descendants().find(|n| n.has_tag_name("table")).unwrap();
    let rows = table
        .descendants()
        .filter(|n| n.has_tag_name("tr") && n.parent().is_some_and(|p| p.has_tag_name("tbody")))
        .count();
    assert_eq!(rows, 9, "one row per workload and configuration");
    let text: String = doc.descendants().filter(|n| n.is_text()).map(|n| n.text().unwrap()).collect();
    assert!(text.contains(LEGEND));
    assert!(text.contains("fio <uring> & \"fixed\""), "escaped and read back intact");
    assert!(text.contains("/var/tmp/x & y"));
    let svgs: Vec<_> = doc.descendants().filter(|n| n.has_tag_name(("http://www.w3.org/2000/svg", "svg"))).collect();
    assert_eq!(svgs.len(), 1, "the plot is inlined");
    // Self-contained: nothing is loaded from elsewhere.
    for n in doc.descendants().filter(|n| n.is_element()) {
        assert!(n.attribute("src").is_none(), "{:?} loads something", n.tag_name());
        assert!(!n.has_tag_name("script") && !n.has_tag_name("link"));
    }
}

#[test]
fn html_with_ratios_and_noise() {
    let r = sample_results();
    let html = r.html("m", 0.2, &svg(&r));
    let doc = parse(&html);
    let text: String = doc.descendants().filter(|n| n.is_text()).map(|n| n.text().unwrap()).collect();
    assert!(text.contains("CPU per byte, uring fixed / copy cold"), "ratio table");
    assert!(text.contains("IOPS, uring fixed / fio uring fixed"));
    assert!(text.contains("* noisy"), "noise note");
    assert!(doc.descendants().any(|n| n.attribute("class") == Some("noisy")));
    let quiet = r.html("m", 10.0, "<svg xmlns=\"http://www.w3.org/2000/svg\"/>");
    assert!(!quiet.contains("class=\"noisy\"") && !quiet.contains("* noisy"));
}
