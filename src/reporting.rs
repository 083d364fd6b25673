//! The objects `getSessionInfo`, `getMetrics` and `list` hand to JavaScript.

use napi::{Env, Result};

use crate::js::{self, Value};
use nity_registry_core::{CloseReason, Cursor, Metrics, SessionInfo};

/// `{ sessionId, clientId, registeredAt, lastActivityAt, metrics }`.
pub fn session_info(env: &Env, info: &SessionInfo<'_>) -> Result<Value> {
  let metrics = js::object(env)?;
  let entries = info
    .metrics
    .iter()
    .map(|(name, value)| Ok((js::string(env, name)?, js::number(env, *value)?)))
    .collect::<Result<Vec<_>>>()?;
  js::define_data(env, metrics, &entries)?;
  let object = js::object(env)?;
  js::define_data(
    env,
    object,
    &[
      (
        js::string(env, "sessionId")?,
        js::string(env, info.view.session_id)?,
      ),
      (
        js::string(env, "clientId")?,
        js::string(env, info.view.client_id)?,
      ),
      (
        js::string(env, "registeredAt")?,
        js::number(env, info.view.registered_at)?,
      ),
      (
        js::string(env, "lastActivityAt")?,
        js::number(env, info.view.last_activity)?,
      ),
      (js::string(env, "metrics")?, metrics),
    ],
  )?;
  Ok(object)
}

/// `getMetrics()`'s answer; every close reason is present, with 0 if unused.
pub fn metrics(env: &Env, metrics: &Metrics) -> Result<Value> {
  let by_reason = js::object(env)?;
  let reasons = CloseReason::ALL
    .iter()
    .map(|reason| {
      let count = metrics
        .closes_by_reason
        .iter()
        .find(|(r, _)| r == reason)
        .map_or(0, |(_, count)| *count);
      Ok((
        js::string(env, reason.as_str())?,
        js::number(env, count as f64)?,
      ))
    })
    .collect::<Result<Vec<_>>>()?;
  js::define_data(env, by_reason, &reasons)?;
  let totals = js::object(env)?;
  let entries = metrics
    .metric_totals
    .iter()
    .map(|(name, value)| Ok((js::string(env, name)?, js::number(env, *value)?)))
    .collect::<Result<Vec<_>>>()?;
  js::define_data(env, totals, &entries)?;
  let object = js::object(env)?;
  let field = |name: &str, value: f64| -> Result<(Value, Value)> {
    Ok((js::string(env, name)?, js::number(env, value)?))
  };
  js::define_data(
    env,
    object,
    &[
      field("sessionsRegistered", metrics.sessions_registered as f64)?,
      field("sessionsClosed", metrics.sessions_closed as f64)?,
      (js::string(env, "closesByReason")?, by_reason),
      field("closeFailures", metrics.close_failures as f64)?,
      field("closeTimeouts", metrics.close_timeouts as f64)?,
      field("averageCloseDurationMs", metrics.average_close_duration_ms)?,
      field("maxCloseDurationMs", metrics.max_close_duration_ms)?,
      field(
        "averageSessionLifetimeMs",
        metrics.average_session_lifetime_ms,
      )?,
      (js::string(env, "metricTotals")?, totals),
    ],
  )?;
  Ok(object)
}

/// `{ sessions, next? }`.
pub fn page(env: &Env, rows: &[Value], next: Option<Cursor>) -> Result<Value> {
  let sessions = js::array(env, rows.len())?;
  for (index, &row) in rows.iter().enumerate() {
    js::set_element(env, sessions, index as u32, row)?;
  }
  let object = js::object(env)?;
  let mut fields = vec![(js::string(env, "sessions")?, sessions)];
  if let Some(next) = next {
    fields.push((js::string(env, "next")?, js::string(env, &next.encode())?));
  }
  js::define_data(env, object, &fields)?;
  Ok(object)
}
