//! Mail merge from the command line: 10,000 rows into SQLite and PostgreSQL, idempotent
//! reruns, a bad row aborting with nothing stored, `--skip-invalid`.

use std::path::Path;

use crate::send_mail::{ids, run, stderr};

/// A templated merge message and a template, in `dir`.
fn write_merge_files(dir: &Path) -> (String, String) {
    let templates = dir.join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("welcome.html"),
        "{% block subject %}Welcome, {{ name }}{% endblock %}\n\
         {% block text %}Hi {{ name }}, your code is {{ code }} ({{ shop }}).{% endblock %}",
    )
    .unwrap();
    let message = dir.join("welcome.json");
    std::fs::write(
        &message,
        r#"{"from": "Shop <hello@shop.example>", "template": "welcome.html", "context": {"shop": "Bücher", "code": "none"}}"#,
    )
    .unwrap();
    (
        templates.display().to_string(),
        message.display().to_string(),
    )
}

fn write_rows(path: &Path, n: usize, bad_at: Option<usize>) {
    let mut csv = String::from("email,name,code\n");
    for i in 0..n {
        if Some(i) == bad_at {
            csv.push_str("not-an-address,Bad,0\n");
        } else {
            csv.push_str(&format!("user{i}@example.org,User {i},C{i}\n"));
        }
    }
    std::fs::write(path, csv).unwrap();
}

fn merge_twice_into(queue: &str, dir: &Path) {
    let (templates, message) = write_merge_files(dir);
    let rows = dir.join("rows.csv");
    write_rows(&rows, 10_000, None);
    let rows = rows.display().to_string();
    let args = [
        "enqueue",
        "--queue",
        queue,
        "--templates",
        &templates,
        "--merge",
        &rows,
        &message,
    ];
    let first = run(&args);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let first_ids = ids(&first);
    assert_eq!(first_ids.len(), 10_000);
    let second = run(&args);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert_eq!(ids(&second), first_ids, "a rerun enqueues nothing new");
    // Each task holds its row's rendered message.
    let status = crate::send_mail::status(queue, &first_ids[1234]);
    let args = &status["args"]["message"];
    assert_eq!(
        args["to"][0], "User 1234 <user1234@example.org>",
        "{status}"
    );
    assert_eq!(args["subject"], "Welcome, User 1234");
    assert_eq!(args["text"], "Hi User 1234, your code is C1234 (Bücher).");
}

#[test]
fn ten_thousand_rows_into_sqlite_once_however_often_merged() {
    let dir = tempfile::tempdir().unwrap();
    let queue = format!("sqlite:{}", dir.path().join("q.db").display());
    merge_twice_into(&queue, dir.path());
}

#[test]
fn ten_thousand_rows_into_postgres_once_however_often_merged() {
    let url = std::env::var("MAILROOM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!(
        "mailroom_merge_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let queue = format!("{url}?schema={schema}");
    let dir = tempfile::tempdir().unwrap();
    merge_twice_into(&queue, dir.path());
    let out = std::process::Command::new("psql")
        .args([
            url.as_str(),
            "-c",
            &format!("DROP SCHEMA \"{schema}\" CASCADE"),
        ])
        .output();
    if let Ok(out) = out {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_bad_row_aborts_the_merge_with_its_line_and_nothing_stored_unless_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (templates, message) = write_merge_files(dir.path());
    let rows = dir.path().join("rows.csv");
    write_rows(&rows, 50, Some(7));
    let rows = rows.display().to_string();
    let queue = format!("sqlite:{}", dir.path().join("q.db").display());
    let args = [
        "enqueue",
        "--queue",
        &queue,
        "--templates",
        &templates,
        "--merge",
        &rows,
        &message,
    ];
    let out = run(&args);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    // Row 7 is on line 9: the header is line 1.
    assert!(stderr(&out).contains("line 9"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    // Nothing was stored: the same merge with the row fixed enqueues all 50.
    write_rows(Path::new(&rows), 50, None);
    let fixed = run(&args);
    assert_eq!(ids(&fixed).len(), 50, "{}", stderr(&fixed));

    let dir = tempfile::tempdir().unwrap();
    let (templates, message) = write_merge_files(dir.path());
    let rows = dir.path().join("rows.csv");
    write_rows(&rows, 50, Some(7));
    let rows = rows.display().to_string();
    let queue = format!("sqlite:{}", dir.path().join("q.db").display());
    let out = run(&[
        "enqueue",
        "--queue",
        &queue,
        "--templates",
        &templates,
        "--merge",
        &rows,
        "--skip-invalid",
        &message,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(ids(&out).len(), 49);
    assert!(stderr(&out).contains("skipped line 9"), "{}", stderr(&out));
}

#[test]
fn json_lines_rows_and_an_undefined_value_name_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let (templates, message) = write_merge_files(dir.path());
    let rows = dir.path().join("rows.jsonl");
    std::fs::write(
        &rows,
        "{\"email\": \"a@example.org\", \"name\": \"A\"}\n\n{\"email\": \"b@example.org\"}\n",
    )
    .unwrap();
    let rows = rows.display().to_string();
    let queue = format!("sqlite:{}", dir.path().join("q.db").display());
    let out = run(&[
        "enqueue",
        "--queue",
        &queue,
        "--templates",
        &templates,
        "--merge",
        &rows,
        &message,
    ]);
    // The second row has no `name`, which the template needs: line 3, nothing stored.
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(stderr(&out).contains("line 3"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("undefined value name"),
        "{}",
        stderr(&out)
    );
}
