//! The service's codes in plain Chinese words, for people: states, operations, check names and
//! verdicts. One place, so every page says a thing the same way.

use time::{OffsetDateTime, UtcOffset};
use zhengyin_model::objection::{ObjectionKind, ObjectionState};
use zhengyin_model::{IncidentKind, Outcome, Status, UseOperation, UseOutcome, Verdict};

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

/// A licence's state, by its API name (as the one interface answers).
pub(crate) fn status_name(name: &str) -> &'static str {
    match name {
        "valid" => "有效",
        "suspended" => "已暂停",
        "revoked" => "已注销",
        "superseded" => "已变更（有新版本）",
        _ => "未生效",
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

/// An objection's state.
pub(crate) fn objection_state(state: &ObjectionState) -> &'static str {
    match state {
        ObjectionState::Filed => "已提交，待受理",
        ObjectionState::Returned => "已退回（不属本机关职责）",
        ObjectionState::Accepted => "已受理",
        ObjectionState::UnderReview => "核查中",
        ObjectionState::AwaitingEvidence => "待补充材料",
        ObjectionState::Corrected { .. } => "已更正",
        ObjectionState::Rejected => "经核查信息无误，不予更正",
        ObjectionState::Withdrawn => "已撤回",
    }
}

/// A step of an objection's handling, by its API name.
pub(crate) fn objection_action(action: &str) -> &'static str {
    match action {
        "return" => "退回",
        "accept" => "受理",
        "review" => "开始核查",
        "request_evidence" => "要求补充材料",
        "supply_evidence" => "补充材料",
        "extend" => "延长办理期限",
        "correct" => "更正证照",
        "reject" => "不予更正",
        "withdraw" => "撤回异议",
        _ => "处理",
    }
}

/// What an objection says is wrong.
pub(crate) fn objection_kind(kind: ObjectionKind) -> &'static str {
    match kind {
        ObjectionKind::Inaccurate => "信息有误",
        ObjectionKind::Incomplete => "信息不全",
        ObjectionKind::Other => "其他",
    }
}

/// Who took a step or filed: `authority:…`, `department:…` or `holder:…`.
pub(crate) fn party(who: &str) -> String {
    if let Some(uscc) = who.strip_prefix("authority:") {
        format!("发证机关（{uscc}）")
    } else if let Some(department) = who.strip_prefix("department:") {
        format!("办事部门 {department}")
    } else if let Some(holder) = who.strip_prefix("holder:") {
        format!("持证人（{}）", holder.rsplit(':').next().unwrap_or(holder))
    } else {
        who.to_owned()
    }
}

/// Today's date in Beijing, as a form's date control writes it (`YYYY-MM-DD`).
pub(crate) fn china_today(now: OffsetDateTime) -> String {
    now.to_offset(BEIJING).date().to_string()
}

/// What a sync incident is about.
pub(crate) fn incident_kind(kind: IncidentKind) -> &'static str {
    match kind {
        IncidentKind::Fork => "日志分叉（同一大小两个根）",
        IncidentKind::Rollback => "日志回滚",
        IncidentKind::Inconsistent => "一致性证明不成立（历史被改写）",
        IncidentKind::EntriesMismatch => "条目与检查点不符",
        IncidentKind::ObjectInvalid => "对象缺失或校验失败",
        IncidentKind::Conflict => "归属冲突",
    }
}

/// A sync source's state.
pub(crate) fn sync_state(state: &str) -> &'static str {
    match state {
        "syncing" => "正常同步",
        "failing" => "出错，重试中",
        "halted" => "已停止（有未处理事件）",
        _ => "未知",
    }
}

/// An API token's role, with whom it stands for.
pub(crate) fn role(role: &str, uscc: Option<&str>, department: Option<&str>) -> String {
    match role {
        "operator" => "运维人员".to_owned(),
        "auditor" => "审计人员".to_owned(),
        "node" => "节点（同步）".to_owned(),
        "authority" => format!("发证机关 {}", uscc.unwrap_or_default()),
        "verifier" => format!("办事部门 {}", department.unwrap_or_default()),
        other => other.to_owned(),
    }
}
