//! The service's codes in plain Chinese words, for people: states, operations, check names and
//! verdicts. One place, so every page says a thing the same way.

use time::{OffsetDateTime, UtcOffset};
use zhengyin_model::{Outcome, Status, UseOperation, UseOutcome, Verdict};

/// Beijing time, in which the pages show every moment.
const BEIJING: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

/// A licence's state.
pub(crate) fn status(status: Option<&Status>) -> &'static str {
    match status {
        Some(Status::Valid) => "有效",
        Some(Status::Suspended { .. }) => "已暂停",
        Some(Status::Revoked { .. }) => "已注销",
        Some(Status::Superseded { .. }) => "已变更（有新版本）",
        None => "未生效",
    }
}

/// A use's operation.
pub(crate) fn operation(op: UseOperation) -> &'static str {
    match op {
        UseOperation::LookupById => "按证照标识查询",
        UseOperation::LookupByHolder => "按持证主体查询",
        UseOperation::Check => "核对信息",
        UseOperation::Fetch => "调取证照",
        UseOperation::Verify => "核验证照",
        UseOperation::Scan => "扫码核验",
    }
}

/// What came of a use.
pub(crate) fn use_outcome(outcome: UseOutcome) -> &'static str {
    match outcome {
        UseOutcome::Answered => "已提供",
        UseOutcome::NotFound => "未找到",
    }
}

/// A verdict, and its CSS class.
pub(crate) fn verdict(verdict: Verdict) -> (&'static str, &'static str) {
    match verdict {
        Verdict::Valid => ("有效", "good"),
        Verdict::Invalid => ("无效：不可采信", "bad"),
        Verdict::Indeterminate => ("无法确定：请勿采信，稍后重试或联系发证机关", "doubt"),
    }
}

/// A check's outcome, and its CSS class.
pub(crate) fn outcome(outcome: Outcome) -> (&'static str, &'static str) {
    match outcome {
        Outcome::Passed => ("通过", "good"),
        Outcome::Failed => ("未通过", "bad"),
        Outcome::Indeterminate => ("无法确定", "doubt"),
        Outcome::Warning => ("通过（请留意）", "doubt"),
    }
}

/// What a check of a verification report looks at.
pub(crate) fn check(code: &str) -> &str {
    match code {
        "format" => "证照格式",
        "cryptosuite" => "签名算法",
        "signature" => "电子签名",
        "certificate" => "签名证书",
        "authority" => "发证机关",
        "registry" => "登记簿比对",
        "status" => "证照状态",
        "status_freshness" => "状态时效",
        "revocation" => "证书吊销",
        "validity_period" => "有效期",
        "signing_time" => "签名时间",
        "seal" => "电子印章",
        "objection" => "异议",
        "seals" => "电子签章",
        "files" => "受保护文件",
        "licence_bound" => "证照与文件绑定",
        "licence" => "所载证照",
        other => other,
    }
}

/// A moment, in Beijing time, to the minute.
pub(crate) fn moment(t: OffsetDateTime) -> String {
    let t = t.to_offset(BEIJING);
    format!(
        "{}年{}月{}日 {:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// A date.
pub(crate) fn date(d: time::Date) -> String {
    format!("{}年{}月{}日", d.year(), u8::from(d.month()), d.day())
}
