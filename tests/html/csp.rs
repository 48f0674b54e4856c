//! CSP builder semantics, header strings and hash vectors.

use mailroom::csp::{self, HashAlgorithm, Nonce, Policy, Sources, hash_source};

#[test]
fn sets_are_sorted_and_deduplicated_lists_keep_order() {
    let policy = Policy::new()
        .set(
            "img-src",
            ["https://b.example", "data:", "https://a.example", "data:"],
        )
        .list(
            "script-src",
            [csp::SELF, "https://z.example", "https://a.example"],
        );
    assert_eq!(
        policy.header_value(None),
        "img-src data: https://a.example https://b.example; script-src 'self' https://z.example https://a.example"
    );
}

#[test]
fn bare_directives_stay_and_empty_ones_drop_out() {
    let policy = Policy::new()
        .list("default-src", [csp::NONE])
        .list("script-src", Vec::<String>::new())
        .set("style-src", Vec::<String>::new())
        .bare("upgrade-insecure-requests")
        .list("font-src", [""]);
    assert_eq!(
        policy.header_value(None),
        "default-src 'none'; upgrade-insecure-requests"
    );
    assert_eq!(
        policy.to_string(),
        "default-src 'none'; upgrade-insecure-requests"
    );
    let names: Vec<&str> = policy.directives().map(|(n, _)| n).collect();
    assert_eq!(names, ["default-src", "upgrade-insecure-requests"]);
}

#[test]
fn setting_a_directive_again_replaces_it_in_place() {
    let policy = Policy::new()
        .list("default-src", [csp::SELF])
        .list("img-src", ["data:"])
        .list("DEFAULT-SRC", [csp::NONE])
        .add_source("img-src", "cid:")
        .add_source("style-src", csp::UNSAFE_INLINE);
    assert_eq!(
        policy.header_value(None),
        "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'"
    );
    assert_eq!(
        policy.get("img-src"),
        Some(&Sources::List(vec!["data:".into(), "cid:".into()]))
    );
}

#[test]
fn nonce_placeholder_is_replaced_or_dropped() {
    let nonce = Nonce::from_string("AAAAAAAAAAAAAAAAAAAAAA").unwrap();
    let policy = Policy::new()
        .list("script-src", [csp::STRICT_DYNAMIC, csp::NONCE])
        .list("style-src", [csp::NONCE]);
    assert_eq!(
        policy.header_value(Some(&nonce)),
        "script-src 'strict-dynamic' 'nonce-AAAAAAAAAAAAAAAAAAAAAA'; style-src 'nonce-AAAAAAAAAAAAAAAAAAAAAA'"
    );
    // without a nonce the placeholder goes, and a directive left empty goes with it
    assert_eq!(policy.header_value(None), "script-src 'strict-dynamic'");
    assert_eq!(nonce.source(), "'nonce-AAAAAAAAAAAAAAAAAAAAAA'");
}

#[test]
fn generated_nonces_are_fresh_url_safe_and_128_bits() {
    let nonces: std::collections::HashSet<String> = (0..64)
        .map(|_| Nonce::generate().as_str().to_owned())
        .collect();
    assert_eq!(nonces.len(), 64);
    for n in &nonces {
        assert_eq!(n.len(), 22, "16 bytes in unpadded base64: {n}");
        assert!(
            n.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
            "{n}"
        );
    }
    assert!(!format!("{:?}", Nonce::generate()).contains(nonces.iter().next().unwrap()));
}

#[test]
fn constants_are_the_quoted_keywords() {
    assert_eq!(
        [
            csp::SELF,
            csp::NONE,
            csp::UNSAFE_INLINE,
            csp::UNSAFE_HASHES,
            csp::STRICT_DYNAMIC,
            csp::REPORT_SAMPLE,
            csp::UNSAFE_EVAL,
            csp::WASM_UNSAFE_EVAL
        ],
        [
            "'self'",
            "'none'",
            "'unsafe-inline'",
            "'unsafe-hashes'",
            "'strict-dynamic'",
            "'report-sample'",
            "'unsafe-eval'",
            "'wasm-unsafe-eval'"
        ]
    );
}

#[test]
fn header_report_only_and_meta_forms() {
    let policy = Policy::new()
        .list("default-src", [csp::NONE])
        .list("style-src", ["'sha256-abc'"])
        .list("report-uri", ["/csp?a=1&b=2"])
        .list("frame-ancestors", [csp::NONE]);
    assert_eq!(
        policy.header(None, false),
        ("Content-Security-Policy", "default-src 'none'; style-src 'sha256-abc'; report-uri /csp?a=1&b=2; frame-ancestors 'none'".to_owned())
    );
    assert_eq!(
        policy.header(None, true).0,
        "Content-Security-Policy-Report-Only"
    );
    assert_eq!(
        policy.meta_tag(None),
        r#"<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'sha256-abc'">"#
    );
}

/// Known vectors: the CSP3 specification's example, the empty string, and values checked
/// with `printf %s TEXT | openssl dgst -sha256 -binary | base64`.
#[test]
fn hash_sources_match_known_vectors() {
    assert_eq!(
        hash_source(HashAlgorithm::Sha256, "alert('Hello, world.');"),
        "'sha256-qznLcsROx4GACP2dm0UCKCzCG+HiZ1guq6ZZDob/Tng='"
    );
    assert_eq!(
        hash_source(HashAlgorithm::Sha256, ""),
        "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
    );
    assert_eq!(
        hash_source(HashAlgorithm::Sha384, ""),
        "'sha384-OLBgp1GsljhM2TJ+sbHjaiH9txEUvgdDTAzHv2P24donTt6/529l+9Ua0vFImLlb'"
    );
    assert_eq!(
        hash_source(HashAlgorithm::Sha512, ""),
        "'sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=='"
    );
    assert_eq!(
        hash_source(HashAlgorithm::Sha384, "p{color:red}\n"),
        "'sha384-x1wPkqByHwK1rwFpUakAi9yDUmFNaUshT+QlLupQPW8W0Cf1aCFVVpvem86sIUyy'"
    );
    assert_eq!(
        hash_source(HashAlgorithm::Sha512, "p{color:red}\n"),
        "'sha512-1qZ7qAeVp6g4sNvOzixBpLNFmA5WA2Z6IECOp5+J7hL1ShcC5kWr6Vpqpjjv8qWwsGfdsjhAHsM+dHzryerotA=='"
    );
    assert_eq!(
        hash_source(HashAlgorithm::Sha256, "color: red"),
        "'sha256-NerDAUWfwD31YdZHveMrq0GLjsNFMwxLpZl0dPUeCcw='"
    );
}

#[test]
fn line_ends_are_normalised_before_hashing() {
    let lf = "'sha256-fhj3NzEbLcOy8mndeDlrA1HxT7Zu+oefdoyyMYGIPHg='";
    assert_eq!(hash_source(HashAlgorithm::Sha256, "a\nb"), lf);
    assert_eq!(hash_source(HashAlgorithm::Sha256, "a\r\nb"), lf);
    assert_eq!(hash_source(HashAlgorithm::Sha256, "a\rb"), lf);
}
