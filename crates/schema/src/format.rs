//! String formats XDM uses (`email`, `uri`, `uri-reference`, `date`, `date-time`) and their
//! checks. Unknown formats are annotations, as in JSON Schema: they never fail a record.

use time::format_description::well_known::Rfc3339;

/// A format the validator checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Email,
    Uri,
    UriReference,
    Date,
    DateTime,
}

impl Format {
    /// The format named by a schema's `format` keyword, if it is one we check.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "email" => Some(Format::Email),
            "uri" => Some(Format::Uri),
            "uri-reference" => Some(Format::UriReference),
            "date" => Some(Format::Date),
            "date-time" => Some(Format::DateTime),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Format::Email => "email",
            Format::Uri => "uri",
            Format::UriReference => "uri-reference",
            Format::Date => "date",
            Format::DateTime => "date-time",
        }
    }

    /// Whether `value` conforms.
    pub(crate) fn check(self, value: &str) -> bool {
        match self {
            Format::Email => is_email(value),
            Format::Uri => is_uri(value),
            Format::UriReference => !value.chars().any(|c| c.is_whitespace() || c.is_control()),
            Format::Date => is_date(value),
            Format::DateTime => time::OffsetDateTime::parse(value, &Rfc3339).is_ok(),
        }
    }
}

/// `local@domain` with a dotted domain of letters, digits and hyphens — the practical
/// subset of RFC 5322 that mail systems (and AEP) accept.
fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    if local.is_empty() || local.len() > 64 || domain.len() > 255 {
        return false;
    }
    let local_ok = local
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c) || !c.is_ascii())
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    // Counted without collecting: this runs for every email field of every record.
    let mut labels = 0;
    let domain_ok = domain.split('.').all(|label| {
        labels += 1;
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii())
    });
    local_ok && domain_ok && labels >= 2
}

/// An absolute URI: `scheme:rest` with an RFC 3986 scheme and no whitespace.
fn is_uri(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    scheme_ok && !rest.is_empty() && !value.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `YYYY-MM-DD`, a real calendar day.
fn is_date(value: &str) -> bool {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    value.len() == 10 && time::Date::parse(value, &format).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(Format::Email.check("john.doe@acme.com"));
        assert!(Format::Email.check("a+b@mail.example.co.uk"));
        for bad in [
            "",
            "plain",
            "@acme.com",
            "a@",
            "a@acme",
            "a b@acme.com",
            "a@acme..com",
            "a@-x.com",
        ] {
            assert!(!Format::Email.check(bad), "{bad}");
        }
    }

    #[test]
    fn uris() {
        assert!(Format::Uri.check("https://www.acme.com/home?x=1"));
        assert!(Format::Uri.check("urn:isbn:0451450523"));
        for bad in ["", "www.acme.com", "/relative", "http://a b", "1http://x"] {
            assert!(!Format::Uri.check(bad), "{bad}");
        }
        assert!(Format::UriReference.check("/relative/path"));
        assert!(!Format::UriReference.check("a b"));
    }

    #[test]
    fn dates_and_times() {
        assert!(Format::Date.check("1984-02-29"));
        assert!(!Format::Date.check("1983-02-29"));
        assert!(!Format::Date.check("1984-2-9"));
        assert!(!Format::Date.check("1984-02-29T00:00:00Z"));
        assert!(Format::DateTime.check("2004-10-23T12:00:00-06:00"));
        assert!(Format::DateTime.check("2020-07-20T10:11:12.345Z"));
        assert!(!Format::DateTime.check("2020-07-20 10:11:12"));
        assert!(!Format::DateTime.check("2020-07-20"));
        assert!(!Format::DateTime.check("yesterday"));
    }
}
