//! Pushes objection notifications to departments' webhooks: at least once, signed, retried.
//!
//! Every half second the outbox is read; each due delivery is `POST`ed as the notification's JSON
//! with `zhengyin-idempotency-key` (the notification id: the same on every retry, so a receiver
//! can drop duplicates), `zhengyin-signature` (base64 signature over the body by the node's token
//! key) and `zhengyin-key` (that key's verification method). A 2xx settles it; anything else, or
//! no answer within 10 s, schedules a retry with back-off. Attempts run side by side, so one slow
//! receiver delays no one else's notifications. The outbox is in the store, written with the
//! objection change itself, so a restart loses nothing.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zhengyin_engine::Engine;
use zhengyin_model::Delivery;

/// Deliveries tried per round.
const PER_ROUND: usize = 64;

/// Runs forever, delivering what is due.
pub async fn deliver(engine: Arc<Engine>) {
    let http = match reqwest::Client::builder().timeout(Duration::from_secs(10)).build() {
        Ok(http) => http,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook client; notifications stay queued");
            return;
        }
    };
    // Notifications with an attempt under way: not started twice.
    let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let due = match engine.due_deliveries(PER_ROUND) {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "reading the outbox failed");
                continue;
            }
        };
        for delivery in due {
            let id = delivery.notification.id.clone();
            if !lock(&in_flight).insert(id.clone()) {
                continue;
            }
            let (http, engine, in_flight) = (http.clone(), Arc::clone(&engine), Arc::clone(&in_flight));
            tokio::spawn(async move {
                let delivered = attempt(&http, &engine, &delivery).await;
                if let Err(e) = engine.settle_delivery(&delivery, delivered).await {
                    tracing::error!(error = %e, notification = %id, "settling a delivery failed");
                }
                lock(&in_flight).remove(&id);
            });
        }
    }
}

fn lock(set: &Mutex<HashSet<String>>) -> std::sync::MutexGuard<'_, HashSet<String>> {
    set.lock().unwrap_or_else(|p| p.into_inner())
}

/// One attempt; whether the receiver took it (2xx).
async fn attempt(http: &reqwest::Client, engine: &Engine, delivery: &Delivery) -> bool {
    let id = &delivery.notification.id;
    let Ok(body) = serde_json::to_vec(&delivery.notification) else {
        return false;
    };
    let mut request = http
        .post(&delivery.url)
        .header("content-type", "application/json")
        .header("zhengyin-idempotency-key", id.as_str());
    match engine.sign_webhook(&body) {
        Ok(Some((method, signature))) => {
            request = request
                .header("zhengyin-key", method)
                .header("zhengyin-signature", signature);
        }
        Ok(None) => {}
        Err(e) => {
            tracing::error!(error = %e, notification = %id, "signing a notification failed");
            return false;
        }
    }
    match request.body(body).send().await {
        Ok(r) if r.status().is_success() => true,
        Ok(r) => {
            tracing::warn!(notification = %id, status = %r.status(), attempts = delivery.attempts + 1, "webhook refused a notification; will retry");
            false
        }
        Err(e) => {
            tracing::warn!(notification = %id, error = %e, attempts = delivery.attempts + 1, "webhook unreachable; will retry");
            false
        }
    }
}
