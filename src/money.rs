//! Money as an operator reads it: an amount in minor units of an ISO 4217 currency
//! rendered as `$500.00`, `€1,250.00`, `¥5,000` or `1,000.000 KWD`. This is the one
//! formatting function every text rendering uses (plan, explain, held, status,
//! rules, warnings); JSON keeps the integer minor units. Imports nothing of ours, so
//! the pure layers (`rules`, `reconcile::plan`) may use it.

/// Digits after the decimal point (ISO 4217 minor unit) of `code`; 2 when unknown.
fn minor_digits(code: &str) -> u32 {
    match code {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

/// The symbol written before the amount, for the currencies that have an
/// unambiguous one; others get their code after the amount.
fn symbol(code: &str) -> Option<&'static str> {
    Some(match code {
        "USD" => "$",
        "EUR" => "€",
        "GBP" => "£",
        "JPY" => "¥",
        "INR" => "₹",
        "KRW" => "₩",
        "CAD" => "CA$",
        "AUD" => "A$",
        "NZD" => "NZ$",
        "BRL" => "R$",
        "MXN" => "MX$",
        _ => return None,
    })
}

/// `1234567` → `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `amount` minor units of `currency` as money: `format_minor(50000, "USD")` is
/// `$500.00`. The currency code is matched case-insensitively.
pub fn format_minor(amount: u64, currency: &str) -> String {
    let code = currency.trim().to_ascii_uppercase();
    let digits = minor_digits(&code);
    let scale = 10u64.pow(digits);
    let whole = grouped(amount / scale);
    let number = if digits == 0 {
        whole
    } else {
        format!(
            "{whole}.{:0width$}",
            amount % scale,
            width = digits as usize
        )
    };
    match symbol(&code) {
        Some(s) => format!("{s}{number}"),
        None if code.is_empty() => number,
        None => format!("{number} {code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_become_money_in_the_currency_of_the_org() {
        assert_eq!(format_minor(50_000, "USD"), "$500.00");
        assert_eq!(format_minor(0, "USD"), "$0.00");
        assert_eq!(format_minor(5, "usd"), "$0.05");
        assert_eq!(format_minor(2_000_000, "USD"), "$20,000.00");
        assert_eq!(format_minor(123_456_789, "EUR"), "€1,234,567.89");
        assert_eq!(format_minor(5_000, "JPY"), "¥5,000");
        assert_eq!(format_minor(1_000_000, "KWD"), "1,000.000 KWD");
        assert_eq!(format_minor(150, "CHF"), "1.50 CHF");
        assert_eq!(format_minor(u64::MAX, "USD"), "$184,467,440,737,095,516.15");
    }

    #[test]
    fn grouping_puts_a_comma_every_three_digits_from_the_right() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(100_000), "100,000");
        assert_eq!(grouped(1_000_000), "1,000,000");
    }
}
