//! Database URL helpers: redaction (for logs and errors) and, for tests,
//! swapping the database name.

/// What a redacted secret is replaced with.
const REDACTED: &str = "***";

/// `url` with its password removed, fit for logs and error messages:
/// `postgres://user:secret@host/db?password=x` becomes
/// `postgres://user:***@host/db?password=***`. Every query parameter whose
/// name contains `password` is redacted too. Strings that are not URLs come
/// back unchanged.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest_start = scheme_end + 3;
    // The user info ends at the last `@` before the query: a password with an
    // unescaped `/` or `@` is still hidden whole.
    let query_start = url[rest_start..]
        .find(['?', '#'])
        .map_or(url.len(), |i| rest_start + i);
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..rest_start]);
    match url[rest_start..query_start].rfind('@') {
        Some(at) => {
            let userinfo = &url[rest_start..rest_start + at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push(':');
                    out.push_str(REDACTED);
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&url[rest_start + at..query_start]);
        }
        None => out.push_str(&url[rest_start..query_start]),
    }
    let tail = &url[query_start..];
    let Some(query) = tail.strip_prefix('?') else {
        out.push_str(tail);
        return out;
    };
    let (query, fragment) = match query.find('#') {
        Some(i) => (&query[..i], &query[i..]),
        None => (query, ""),
    };
    out.push('?');
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((key, _)) if key.to_ascii_lowercase().contains("password") => {
                out.push_str(key);
                out.push('=');
                out.push_str(REDACTED);
            }
            _ => out.push_str(pair),
        }
    }
    out.push_str(fragment);
    out
}

/// `url` (a `postgres://` URL) naming database `database` instead of its
/// own; user, host, port and query parameters are kept.
#[cfg(feature = "testing")]
pub(crate) fn with_database(url: &str, database: &str) -> String {
    let rest_start = url.find("://").map_or(0, |i| i + 3);
    let query_start = url[rest_start..]
        .find(['?', '#'])
        .map_or(url.len(), |i| rest_start + i);
    // The host starts after the user info, which may hold a `/`.
    let host_start = url[rest_start..query_start]
        .rfind('@')
        .map_or(rest_start, |at| rest_start + at + 1);
    let authority_end = url[host_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| host_start + i);
    let tail = &url[authority_end..];
    let suffix = tail.find(['?', '#']).map_or("", |i| &tail[i..]);
    format!("{}/{database}{suffix}", &url[..authority_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password_in_userinfo() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db.example:5432/skywire"),
            "postgres://app:***@db.example:5432/skywire"
        );
    }

    #[test]
    fn redacts_password_with_reserved_characters() {
        let redacted = redact_url("postgres://app:p@ss/w0rd@db/skywire");
        assert_eq!(redacted, "postgres://app:***@db/skywire");
        assert!(!redacted.contains("p@ss"));
    }

    #[test]
    fn redacts_password_query_parameters() {
        assert_eq!(
            redact_url("postgres://app@db/skywire?sslmode=require&password=x&sslpassword=y#f"),
            "postgres://app@db/skywire?sslmode=require&password=***&sslpassword=***#f"
        );
    }

    #[test]
    fn leaves_urls_without_secrets_alone() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/postgres",
            "postgres://127.0.0.1/db",
            "sqlite://data/pool.db",
            "not a url",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }

    #[cfg(feature = "testing")]
    #[test]
    fn swaps_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "t2"),
            "postgres://u:p@h/t2?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "t3"), "postgres://h/t3");
        assert_eq!(
            with_database("postgres://h?x=1", "t4"),
            "postgres://h/t4?x=1"
        );
        assert_eq!(
            with_database("postgres://u:a/b@h/db", "t5"),
            "postgres://u:a/b@h/t5"
        );
    }
}
