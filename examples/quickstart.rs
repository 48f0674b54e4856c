//! The README's main command: compose a message, enqueue it on the embedded SQLite queue,
//! let a worker deliver it, and show the result. No server needed: the worker delivers to
//! the `file:` transport (one `.eml` per message).
//!
//! cargo run --example quickstart [-- DIR]    (DIR defaults to target/quickstart)
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use mailroom::send_mail::{self, SendMail};
use mailroom::tasks::{self, Registry, Worker};
use mailroom::templates::Templates;
use mailroom::{Email, transport};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/quickstart"));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("queue.db");
    let outbox = dir.join("outbox");

    // 1. Compose from a template: examples/templates/order.html holds the subject, text and
    //    HTML blocks (sharing layout.html); the context fills them. Unicode names, an IDNA
    //    domain.
    let templates =
        Templates::from_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/templates"))?;
    let context: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/templates/order.json"
    ))?)?;
    let email: Email = templates
        .email("order.html", &context)?
        .from("Bücher & Co <orders@shop.example>")
        .to("Jürgen <jurgen@bücher.example>")
        .build()?;
    println!(
        "composed {:?} from order.html",
        email.subject().unwrap_or_default()
    );

    // 2. Enqueue a send_mail task on the SQLite queue. Only the transport's *name* is stored.
    let registry = Registry::new().with(SendMail::new().transport(
        "default",
        transport::from_url(&format!("file:{}", outbox.display()))?,
    ));
    let backend = tasks::connect_worker(&format!("sqlite:{}", db.display())).await?;
    let id = send_mail::enqueue(backend.as_ref(), &email, "default").await?;
    println!("enqueued task {id} on sqlite:{}", db.display());

    // 3. A worker delivers it (burst mode: exit once the queue is empty).
    let report = Worker::builder(backend.clone(), registry)
        .burst(true)
        .build()
        .run(std::future::pending())
        .await?;
    println!("worker finished: {report:?}");

    // 4. The result, as `mailroom status` prints it.
    let result = backend.get_result(id).await?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    let delivered: Vec<PathBuf> = std::fs::read_dir(&outbox)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    println!(
        "delivered files in {}: {}",
        outbox.display(),
        delivered.len()
    );
    Ok(())
}
