//! Encodings shared by everything that keeps data in the store: big-endian sequence
//! keys (so key order is numeric order), composite keys, and JSON values.

use serde::de::DeserializeOwned;
use serde::Serialize;

use std::ops::ControlFlow;

use super::{Store, StoreError, Table, TxError, Txn};

/// Separator between the parts of a composite key. Ids never contain it.
pub const SEP: u8 = 0;

/// A sequence number as an order-preserving key.
pub fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Decodes a key written by [`seq_key`].
pub fn seq_from_key(key: &[u8], table: Table) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| StoreError::Corrupt {
        table: table.name(),
        detail: format!("sequence key of {} bytes", key.len()),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

/// `a 0x00 b`.
pub fn pair_key(a: &str, b: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(a.len() + b.len() + 1);
    key.extend_from_slice(a.as_bytes());
    key.push(SEP);
    key.extend_from_slice(b.as_bytes());
    key
}

/// `a 0x00`: the prefix of every [`pair_key`] starting with `a`.
pub fn pair_prefix(a: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(a.len() + 1);
    key.extend_from_slice(a.as_bytes());
    key.push(SEP);
    key
}

/// The second part of a [`pair_key`].
pub fn pair_second(key: &[u8]) -> Option<&str> {
    let at = key.iter().position(|b| *b == SEP)?;
    std::str::from_utf8(&key[at + 1..]).ok()
}

/// Serializes a value for storage.
pub fn to_bytes<T: Serialize>(value: &T, table: Table) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt {
        table: table.name(),
        detail: format!("cannot encode: {e}"),
    })
}

/// Deserializes a stored value.
pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8], table: Table) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table: table.name(),
        detail: format!("cannot decode: {e}"),
    })
}

/// Visits the decoded values of a prefix scan in key order (see [`Store::scan`]),
/// stopping at the first value that does not decode and returning its error.
pub fn scan_json<T: DeserializeOwned>(
    store: &dyn Store,
    table: Table,
    prefix: &[u8],
    from: Option<&[u8]>,
    mut visit: impl FnMut(&[u8], T) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    let mut failed = None;
    store.scan(
        table,
        prefix,
        from,
        &mut |k, v| match from_bytes::<T>(v, table) {
            Ok(value) => visit(k, value),
            Err(e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
        },
    )?;
    failed.map_or(Ok(()), Err)
}

/// Collects up to `limit` decoded values of a prefix scan, starting at `from`.
pub fn collect_json<T: DeserializeOwned>(
    store: &dyn Store,
    table: Table,
    prefix: &[u8],
    from: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    scan_json(store, table, prefix, from, |k, v| {
        out.push((k.to_vec(), v));
        if out.len() >= limit {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    Ok(out)
}

/// Reads and decodes a JSON value inside a transaction.
pub fn tx_get_json<T: DeserializeOwned>(
    txn: &mut dyn Txn,
    table: Table,
    key: &[u8],
) -> Result<Option<T>, TxError> {
    match txn.get(table, key)? {
        Some(bytes) => Ok(Some(from_bytes(&bytes, table)?)),
        None => Ok(None),
    }
}

/// Encodes and writes a JSON value inside a transaction.
pub fn tx_put_json<T: Serialize>(
    txn: &mut dyn Txn,
    table: Table,
    key: &[u8],
    value: &T,
) -> Result<(), TxError> {
    let bytes = to_bytes(value, table)?;
    txn.insert(table, key, &bytes)
}

/// Reads a `u64` counter stored big-endian (missing = 0).
pub fn tx_get_u64(txn: &mut dyn Txn, table: Table, key: &[u8]) -> Result<u64, TxError> {
    match txn.get(table, key)? {
        Some(bytes) => Ok(seq_from_key(&bytes, table)?),
        None => Ok(0),
    }
}

/// Writes a `u64` counter.
pub fn tx_put_u64(txn: &mut dyn Txn, table: Table, key: &[u8], value: u64) -> Result<(), TxError> {
    txn.insert(table, key, &seq_key(value))
}

/// Adds `delta` to a counter and returns the new value.
pub fn tx_bump(txn: &mut dyn Txn, table: Table, key: &[u8], delta: i64) -> Result<u64, TxError> {
    let current = tx_get_u64(txn, table, key)?;
    let next = current.saturating_add_signed(delta);
    tx_put_u64(txn, table, key, next)?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_keys_sort_numerically() {
        assert!(seq_key(2) < seq_key(10));
        assert!(seq_key(255) < seq_key(256));
        assert_eq!(seq_from_key(&seq_key(77), Table::Audit).unwrap(), 77);
    }

    #[test]
    fn pair_keys_split_back() {
        let key = pair_key("g1", "u2");
        assert!(key.starts_with(&pair_prefix("g1")));
        assert_eq!(pair_second(&key), Some("u2"));
    }
}
