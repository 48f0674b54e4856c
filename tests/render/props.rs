//! Property tests: no input makes the address parser or the renderer panic, and whatever
//! renders is 7-bit clean, CRLF-only, within line limits and reads back the same.

use mail_parser::MessageParser;
use mailroom::{Address, Email, RenderOptions};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn address_parser_never_panics(input in "\\PC{0,60}|[a-zA-Z0-9 \"<>@.,;:\\\\\\[\\]()\r\n\u{85}\u{2028}ü]{0,40}") {
        let _ = Address::parse(&input);
    }

    #[test]
    fn rendering_never_panics_and_reads_back(
        name in "\\PC{0,40}",
        subject in "\\PC{0,120}",
        body in "(\\PC|\n){0,300}",
        filename in "\\PC{1,40}",
        local in "[a-z0-9.üß]{1,12}",
        domain in "[a-zé]{1,10}\\.example",
    ) {
        let built = Email::builder()
            .from((name.clone(), format!("{local}@{domain}")))
            .to("bob@example.org")
            .subject(subject.clone())
            .text(body.clone())
            .attach(filename, vec![0, 1, 2, 255])
            .build();
        let Ok(email) = built else { return Ok(()); };
        match email.render(&RenderOptions::deterministic()) {
            Err(e) => prop_assert!(email.needs_smtputf8(), "unexpected error {e}"),
            Ok(bytes) => {
                prop_assert!(bytes.is_ascii());
                prop_assert!(!bytes.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'));
                prop_assert!(bytes.split(|b| *b == b'\n').all(|l| l.len() <= 999));
                let parsed = MessageParser::default().parse(&bytes).unwrap();
                let trimmed = subject.trim();
                if !trimmed.is_empty() && !subject.contains("=?") && !subject.contains("  ") && !subject.contains('\t') {
                    prop_assert_eq!(parsed.subject().map(str::trim), Some(trimmed));
                }
            }
        }
        if let Ok(bytes) = email.render(&RenderOptions::deterministic().smtputf8(true)) {
            prop_assert!(bytes.split(|b| *b == b'\n').all(|l| l.len() <= 999));
        }
    }
}
