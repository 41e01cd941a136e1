//! Server-assigned resource ids: UUIDv7-shaped (RFC 9562) and strictly increasing,
//! so the store's key order is creation order and listing pages stay stable while
//! new resources arrive (Okta's import needs a stable order).

use parking_lot::Mutex;

use crate::auth::{hex, random_bytes, KeyError};

/// Hands out increasing ids.
#[derive(Debug, Default)]
pub struct IdGen {
    last: Mutex<(u64, u16)>,
}

impl IdGen {
    /// A generator.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next id for a resource created at `now_ms` (milliseconds since the epoch).
    /// Within one millisecond (or if the clock steps back) a 12-bit counter keeps
    /// ids increasing, borrowing the next millisecond when it runs out.
    pub fn next(&self, now_ms: u64) -> Result<String, KeyError> {
        let (ms, counter) = {
            let mut last = self.last.lock();
            let (last_ms, last_counter) = *last;
            let next = if now_ms > last_ms {
                (now_ms, 0)
            } else if last_counter < 0x0fff {
                (last_ms, last_counter + 1)
            } else {
                (last_ms + 1, 0)
            };
            *last = next;
            next
        };
        let random = random_bytes::<8>()?;
        let mut bytes = [0u8; 16];
        bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..8]);
        bytes[6] = 0x70 | ((counter >> 8) as u8 & 0x0f);
        bytes[7] = (counter & 0xff) as u8;
        bytes[8] = 0x80 | (random[0] & 0x3f);
        bytes[9..16].copy_from_slice(&random[1..8]);
        let h = hex(&bytes);
        Ok(format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuid_shaped_and_strictly_increasing() {
        let ids = IdGen::new();
        let mut prev = String::new();
        for i in 0..10_000u64 {
            // The same millisecond, then a clock that steps back, then forward.
            let now = 1_767_225_600_000 + if i < 5000 { 0 } else { 10_000 - i };
            let id = ids.next(now).unwrap();
            assert_eq!(id.len(), 36);
            assert_eq!(&id[14..15], "7");
            assert!(id > prev, "{id} <= {prev}");
            prev = id;
        }
    }
}
