//! The `send_mail` task's handling of deferred recipients, in the library, with a scripted
//! transport for the replies no real server gives on demand.

use std::sync::{Arc, Mutex};

use mailroom::send_mail::{self, SendMail};
use mailroom::tasks::{self, Registry, TaskId, TaskStatus, Worker, WorkerBackend};
use mailroom::transport::{Delivery, Rejection, Transport};
use mailroom::{DeliveryFailure, Email, Error, Rendered};

/// Defers `b@example.org` on the first call, then refuses it for good.
#[derive(Debug, Default)]
struct DeferThenRefuse {
    calls: Mutex<Vec<Vec<String>>>,
}

#[async_trait::async_trait]
impl Transport for DeferThenRefuse {
    async fn send_rendered(&self, message: &Rendered) -> mailroom::Result<Delivery> {
        let call = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(message.envelope().to().to_vec());
            calls.len()
        };
        if call > 1 {
            return Err(Error::Permanent(DeliveryFailure::with_code(
                550,
                "every recipient was refused: b@example.org: 550 5.1.1 no such user",
            )));
        }
        Ok(Delivery {
            message_id: Some(message.message_id().to_owned()),
            accepted: vec!["a@example.org".to_owned()],
            deferred: vec![Rejection {
                recipient: "b@example.org".to_owned(),
                code: 451,
                message: "4.7.1 greylisted".to_owned(),
            }],
            rejected: Vec::new(),
            reply: None,
            queue_id: None,
        })
    }
}

async fn work_until_settled(backend: &Arc<dyn WorkerBackend>, registry: &Registry, id: TaskId) {
    // Burst workers until the retry's backoff has passed (bounded; no timing asserted).
    for _ in 0..100 {
        Worker::builder(Arc::clone(backend), registry.clone())
            .burst(true)
            .build()
            .run(std::future::pending())
            .await
            .unwrap();
        if backend.get_result(id).await.unwrap().status != TaskStatus::Ready {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_deferred_recipient_refused_on_retry_leaves_the_task_delivered_to_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let transport = Arc::new(DeferThenRefuse::default());
    let registry = Registry::new().with(SendMail::new().transport("default", transport.clone()));
    let url = format!("sqlite:{}", dir.path().join("q.db").display());
    let backend = tasks::connect_worker(&url).await.unwrap();
    let email = Email::builder()
        .from("zoe@example.com")
        .to("a@example.org")
        .to("b@example.org")
        .subject("hi")
        .text("hello")
        .build()
        .unwrap();
    let id = send_mail::enqueue(backend.as_ref(), &email, "default")
        .await
        .unwrap();

    work_until_settled(&backend, &registry, id).await;
    let result = backend.get_result(id).await.unwrap();
    assert_eq!(result.status, TaskStatus::Successful, "{result:?}");
    let delivery: Delivery = serde_json::from_value(result.return_value.clone().unwrap()).unwrap();
    assert_eq!(delivery.accepted, ["a@example.org"]);
    assert!(delivery.deferred.is_empty(), "{delivery:?}");
    assert_eq!(delivery.rejected.len(), 1, "{delivery:?}");
    assert_eq!(delivery.rejected[0].recipient, "b@example.org");
    assert_eq!(delivery.rejected[0].code, 550);
    assert_eq!(
        *transport.calls.lock().unwrap(),
        [
            vec!["a@example.org".to_owned(), "b@example.org".to_owned()],
            vec!["b@example.org".to_owned()]
        ],
        "the retry went to the deferred recipient alone"
    );
}
