//! A scripted local HTTP mock of the Admin API: records every request and answers
//! with a script of the request and its ordinal. Shared with the doctor and Plugins
//! API tests.

use super::*;

#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) headers: HashMap<String, String>,
}

pub(crate) enum Reply {
    Json(u16, Value, Vec<(&'static str, &'static str)>),
    Hang,
}

pub(crate) struct Mock {
    pub(crate) url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    server: actix_web::dev::ServerHandle,
}

impl Mock {
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().clone()
    }

    pub(crate) fn client(&self) -> HttpCoworkClient {
        HttpCoworkClient::new(ClientConfig::new(&self.url, KEY).without_limits()).unwrap()
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

/// The mock's answer for the n-th request.
type Script = Arc<dyn Fn(&Seen, usize) -> Reply + Send + Sync>;

/// A server that records each request and answers with `script(request, n)` where
/// `n` counts requests from 1.
pub(crate) async fn mock(script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Mock {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let script: Script = Arc::new(script);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let recorded = seen.clone();
    let server = HttpServer::new(move || {
        let recorded = recorded.clone();
        let script = script.clone();
        App::new().default_service(web::to(move |req: HttpRequest, _body: Bytes| {
            let recorded = recorded.clone();
            let script = script.clone();
            async move {
                let seen = Seen {
                    method: req.method().to_string(),
                    path: req.path().to_owned(),
                    query: req.query_string().to_owned(),
                    headers: req
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                        .collect(),
                };
                let n = {
                    let mut all = recorded.lock();
                    all.push(seen.clone());
                    all.len()
                };
                match script(&seen, n) {
                    Reply::Json(status, body, headers) => {
                        let mut resp = HttpResponse::build(
                            actix_web::http::StatusCode::from_u16(status).unwrap(),
                        );
                        resp.insert_header(("request-id", format!("req_mock_{n}")));
                        for h in headers {
                            resp.insert_header(h);
                        }
                        resp.json(body)
                    }
                    Reply::Hang => std::future::pending::<HttpResponse>().await,
                }
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(0)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Mock {
        url,
        seen,
        server: handle,
    }
}

pub(crate) fn group_json(id: &str) -> Value {
    json!({
        "type": "rbac_group", "id": id, "name": "G", "source_type": "direct",
        "roles": [], "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"
    })
}

pub(crate) fn user_json(id: &str) -> Value {
    json!({
        "type": "user", "id": id, "email": format!("{id}@example.com"), "name": "U",
        "role": "user", "added_at": "2026-01-01T00:00:00Z"
    })
}

pub(crate) fn error_json(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_body"})
}
