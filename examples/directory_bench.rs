//! Directory write throughput without HTTP: creates per second on the memory store
//! and on sled (durable: each create returns after its group-committed flush), with
//! one writer and with several concurrent writers.
//!
//! `cargo run --release --example directory_bench -- [creates] [threads]`

use std::sync::Arc;
use std::time::Instant;

use cowork_sync::clock::system;
use cowork_sync::config::UnknownMembers;
use cowork_sync::directory::{Caller, Directory};
use cowork_sync::scim::{ResourceKind, SchemaRegistry};
use cowork_sync::store::memory::MemoryStore;
use cowork_sync::store::sled_store::{SledOptions, SledStore};
use cowork_sync::store::Store;
use serde_json::json;

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn run(name: &str, store: Arc<dyn Store>, creates: usize, threads: usize) {
    let Ok(registry) = SchemaRegistry::builtin() else {
        return;
    };
    let dir = Arc::new(Directory::new(
        store,
        Arc::new(registry),
        system(),
        UnknownMembers::Skip,
    ));
    let start = Instant::now();
    let per = creates / threads;
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let caller = Caller { subject: "bench", request_id: None };
                for i in 0..per {
                    let name = format!("t{t}-u{i:07}@example.com");
                    let body = json!({
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": name, "externalId": format!("ext-{name}"),
                        "name": {"givenName": "Given", "familyName": "Family"},
                        "emails": [{"value": name, "type": "work", "primary": true}],
                        "active": true,
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Dept 1"}
                    });
                    if dir.create(caller, ResourceKind::User, body).is_err() {
                        eprintln!("a create failed");
                        return;
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name:<28} {threads} writer(s): {:>7.0} creates/s ({:.1} µs each)",
        (per * threads) as f64 / secs,
        secs * 1e6 / (per * threads) as f64
    );
}

/// sled without waiting for flushes: what the transactions alone cost.
struct NoSync(SledStore);

impl Store for NoSync {
    fn get(
        &self,
        t: cowork_sync::store::Table,
        k: &[u8],
    ) -> Result<Option<Vec<u8>>, cowork_sync::store::StoreError> {
        self.0.get(t, k)
    }
    fn scan(
        &self,
        t: cowork_sync::store::Table,
        p: &[u8],
        f: Option<&[u8]>,
        v: &mut cowork_sync::store::Visit<'_>,
    ) -> Result<(), cowork_sync::store::StoreError> {
        self.0.scan(t, p, f, v)
    }
    fn last(
        &self,
        t: cowork_sync::store::Table,
        p: &[u8],
    ) -> Result<Option<cowork_sync::store::Entry>, cowork_sync::store::StoreError> {
        self.0.last(t, p)
    }
    fn transact(
        &self,
        b: &cowork_sync::store::TxBody<'_>,
    ) -> Result<(), cowork_sync::store::StoreError> {
        self.0.transact(b)
    }
    fn sync(&self) -> Result<(), cowork_sync::store::StoreError> {
        Ok(())
    }
    fn size_on_disk(&self) -> Result<u64, cowork_sync::store::StoreError> {
        self.0.size_on_disk()
    }
}

fn main() {
    let creates = arg(1, 20_000);
    let threads = arg(2, 8);
    for t in [1, threads] {
        run("memory", Arc::new(MemoryStore::new()), creates, t);
        let tmp =
            std::env::temp_dir().join(format!("cowork-sync-bench-{}-{t}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        match SledStore::open(&tmp, &SledOptions::default()) {
            Ok(sled) => run("sled (durable)", Arc::new(sled), creates, t),
            Err(e) => eprintln!("cannot open sled: {e}"),
        }
        let _ = std::fs::remove_dir_all(&tmp);
        match SledStore::open(&tmp, &SledOptions::default()) {
            Ok(sled) => run("sled (no flush wait)", Arc::new(NoSync(sled)), creates, t),
            Err(e) => eprintln!("cannot open sled: {e}"),
        }
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
