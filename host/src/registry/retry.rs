//! Retries with exponential backoff for transient registry failures
//! (see [`RegistryError::transience`]).

use super::RegistryError;
use super::error::Transience;
use std::future::Future;
use std::time::Duration;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Retries after the first attempt.
    pub(crate) retries: u32,
    /// Delay before the first retry; doubled each time.
    pub(crate) initial: Duration,
    /// Upper bound of a delay (a `Retry-After` may ask for more, up to
    /// [`MAX_RETRY_AFTER`]).
    pub(crate) max: Duration,
}

/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

impl RetryPolicy {
    /// The wait before retry number `n` (0-based).
    pub(crate) fn delay(&self, n: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(ra) = retry_after {
            return ra.min(MAX_RETRY_AFTER);
        }
        let factor = 1u32.checked_shl(n).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// Runs `attempt` until it succeeds, fails permanently, or the retries
    /// are used up; returns the last failure.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        what: &str,
        mut attempt: F,
    ) -> Result<T, RegistryError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, RegistryError>>,
    {
        let mut n = 0;
        loop {
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let Transience::Transient(retry_after) = e.transience() else {
                        return Err(e);
                    };
                    if n >= self.retries {
                        return Err(e);
                    }
                    let wait = self.delay(n, retry_after);
                    tracing::warn!(
                        error = %e,
                        attempt = n + 1,
                        retries = self.retries,
                        wait_ms = wait.as_millis() as u64,
                        "{what} failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    n += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_client::errors::OciDistributionError;
    use std::cell::Cell;

    fn policy(retries: u32) -> RetryPolicy {
        RetryPolicy {
            retries,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(4),
        }
    }

    fn err(code: u16) -> RegistryError {
        RegistryError::Request {
            operation: "x".into(),
            host: "h".into(),
            repository: "r".into(),
            cause: Box::new(OciDistributionError::ServerError {
                code,
                url: "u".into(),
                message: String::new(),
            }),
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            retries: 10,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
        };
        let d: Vec<u64> = (0..7).map(|n| p.delay(n, None).as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(p.delay(40, None), Duration::from_secs(30));
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(9))),
            Duration::from_secs(9)
        );
        assert_eq!(p.delay(0, Some(Duration::from_secs(9999))), MAX_RETRY_AFTER);
    }

    #[tokio::test]
    async fn retries_transient_only() {
        let calls = Cell::new(0);
        let r: Result<(), _> = policy(3)
            .run("t", || {
                calls.set(calls.get() + 1);
                async { Err(err(503)) }
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls.get(), 4);

        calls.set(0);
        let r: Result<(), _> = policy(3)
            .run("t", || {
                calls.set(calls.get() + 1);
                async { Err(err(401)) }
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls.get(), 1);

        calls.set(0);
        let r = policy(3)
            .run("t", || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move { if n < 3 { Err(err(429)) } else { Ok(n) } }
            })
            .await;
        assert_eq!(r.unwrap(), 3);
    }
}
