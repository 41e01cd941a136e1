//! Prints how long rule resolution and one explanation take on a synthetic
//! directory: by default 100,000 users, 100 rules, IdP groups of 10,000 members.
//!
//! `cargo run --release --example rules_bench -- [users] [groups] [members_per_group]`

use std::time::Instant;

use cowork_sync::rules::{explain, resolve, synthetic_snapshot};

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let users = arg(1, 100_000);
    let groups = arg(2, 100);
    let members = arg(3, 10_000);
    let Ok((table, snapshot)) = synthetic_snapshot(users, groups, members) else {
        eprintln!("the synthetic rule table did not validate");
        std::process::exit(1);
    };
    let memberships: usize = snapshot.groups.iter().map(|g| g.member_users.len()).sum();
    println!(
        "input: {users} users, {} IdP groups, {memberships} memberships, {} rules",
        snapshot.groups.len(),
        table.rules().len()
    );
    let mut best = f64::MAX;
    let mut desired = None;
    for _ in 0..3 {
        let start = Instant::now();
        let d = resolve(&table, &snapshot);
        best = best.min(start.elapsed().as_secs_f64());
        desired = Some(d);
    }
    if let Some(d) = desired {
        println!(
            "resolve: {:.3} s (best of 3) -> {} downstream groups, {} governed users, {} warnings",
            best,
            d.groups.len(),
            d.managed_users.len(),
            d.warnings.len()
        );
    }
    let start = Instant::now();
    let found = explain(&table, &snapshot, "u00012345").is_some();
    println!(
        "explain one user: {:.1} ms (found: {found})",
        start.elapsed().as_secs_f64() * 1000.0
    );
}
