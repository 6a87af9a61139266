use super::*;
use std::path::Path;

fn header() -> LogHeader {
    LogHeader { device_size: 1 << 20, offset_align: 512, len_align: 512, persistence: 2, description: "copy:/x".into() }
}

fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("pinio-crash-log-{name}-{}", std::process::id()))
}

#[test]
fn records_round_trip_and_a_cut_tail_is_dropped() {
    let p = scratch("roundtrip");
    {
        let w = LogWriter::create(&p, &header()).unwrap();
        w.base(4096, &[7; 4096]).unwrap();
        w.write(1, 0, 8192, &[&[1; 512], &[2; 1024]]).unwrap();
        w.done_many(&[(1, 1536)]).unwrap();
        w.flush_start(2, 0, 0).unwrap();
        w.flushed(2, -5).unwrap();
    }
    let bytes = std::fs::read(&p).unwrap();
    let log = LogReader::parse(&p, &bytes).unwrap();
    assert_eq!(log.header, header());
    assert!(log.closed && log.tail.is_none());
    assert_eq!(log.records.len(), 6);
    assert_eq!(log.records[0], Record::Base { offset: 4096, data: vec![7; 4096] });
    let mut data = vec![1; 512];
    data.extend_from_slice(&[2; 1024]);
    assert_eq!(log.records[1], Record::Write { id: 1, queue: 0, dev_offset: 8192, segments: vec![512, 1024], data });
    assert_eq!(log.records[2], Record::Done { id: 1, result: 1536 });
    assert_eq!(log.records[3], Record::Flush { id: 2, queue: 0, mode: 0 });
    assert_eq!(log.records[4], Record::Flushed { id: 2, result: -5 });
    assert_eq!(log.records[5], Record::End { records: 5 });
    // Every cut of the file is a valid prefix, never an error.
    let hlen = header().encode().len();
    for cut in hlen..bytes.len() {
        let l = LogReader::parse(Path::new("cut"), &bytes[..cut]).unwrap();
        assert!(l.records.len() < 6 && !l.closed);
        assert!(l.tail.is_some() || cut == hlen || l.records.len() < 6, "cut {cut}");
    }
    // A flipped bit in a record stops reading there.
    let mut bad = bytes.clone();
    bad[hlen + 20] ^= 1;
    let l = LogReader::parse(Path::new("bad"), &bad).unwrap();
    assert!(l.records.is_empty() && l.tail.unwrap().contains("checksum"));
    std::fs::remove_file(&p).unwrap();
}

#[test]
fn bad_headers_are_refused_with_reasons() {
    for (b, why) in [
        (b"NOTALOG!................................................".to_vec(), "magic"),
        (header().encode()[..40].to_vec(), "magic"),
    ] {
        let e = LogReader::parse(Path::new("x"), &b).unwrap_err().to_string();
        assert!(e.contains(why), "{e}");
    }
    let mut h = header().encode();
    h[20] ^= 1;
    let e = LogReader::parse(Path::new("x"), &h).unwrap_err().to_string();
    assert!(e.contains("checksum"), "{e}");
    let mut h = header().encode();
    h[8] = 9;
    let e = LogReader::parse(Path::new("x"), &h).unwrap_err().to_string();
    assert!(e.contains("version 9"), "{e}");
}
