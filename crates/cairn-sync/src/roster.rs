//! The team and its roster, kept in the team doc so they sync like everything else:
//! `team_info` (the team's name) and `member/<endpoint id>` (a device, the person it belongs to,
//! who added it, and whether it was removed). Removal is a flag, not a deletion, so a concurrent
//! re-add cannot silently undo it without a conflict.

use cairn_catalog::Catalog;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::ledger::now_ms;

const TEAM_KEY: &str = "team_info";
const MEMBER_PREFIX: &str = "member/";

/// The team's own record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamInfo {
    pub name: String,
    pub created_by: String,
    pub created_ms: i64,
}

/// One device on the roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The device's endpoint id (hex): its identity.
    pub id: String,
    /// The person it belongs to.
    pub name: String,
    #[serde(default)]
    pub email: String,
    /// The endpoint id of the device that added it (itself for the team's creator).
    pub added_by: String,
    pub added_ms: i64,
    #[serde(default)]
    pub removed: bool,
    #[serde(default)]
    pub removed_by: Option<String>,
    /// When it was removed: events its key signs after this are flagged by `cairn audit
    /// verify` (absent for removals recorded before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_ms: Option<i64>,
    /// Addresses the device announced it can be dialled at (an always-on peer's).
    #[serde(default)]
    pub addrs: Vec<String>,
}

pub fn team(catalog: &mut Catalog) -> Result<Option<TeamInfo>, Error> {
    match catalog.team_entry(TEAM_KEY)? {
        Some(text) => Ok(Some(serde_json::from_str(&text).map_err(|e| {
            Error::Team(format!("the team record does not parse: {e}"))
        })?)),
        None => Ok(None),
    }
}

/// Creates the team with this device as its first member.
pub fn create(
    catalog: &mut Catalog,
    name: &str,
    me: &str,
    person: &str,
    email: &str,
) -> Result<TeamInfo, Error> {
    if let Some(t) = team(catalog)? {
        return Err(Error::Team(format!(
            "this workspace already belongs to team '{}'",
            t.name
        )));
    }
    if name.trim().is_empty() {
        return Err(Error::Team("a team needs a name".into()));
    }
    let info = TeamInfo {
        name: name.to_owned(),
        created_by: me.to_owned(),
        created_ms: now_ms(),
    };
    catalog.put_team_entry(TEAM_KEY, Some(&json(&info)))?;
    put(
        catalog,
        &Member {
            id: me.to_owned(),
            name: person.to_owned(),
            email: email.to_owned(),
            added_by: me.to_owned(),
            added_ms: now_ms(),
            removed: false,
            removed_by: None,
            removed_ms: None,
            addrs: Vec::new(),
        },
    )?;
    Ok(info)
}

/// Every device on the roster, removed ones included, sorted by id.
pub fn members(catalog: &mut Catalog) -> Result<Vec<Member>, Error> {
    let mut out = Vec::new();
    for (key, text) in catalog.team_entries(MEMBER_PREFIX)? {
        match serde_json::from_str::<Member>(&text) {
            Ok(m) if key.strip_prefix(MEMBER_PREFIX) == Some(m.id.as_str()) => out.push(m),
            // An entry whose id does not match its key grants nothing.
            _ => tracing::warn!(key, "ignoring a malformed roster entry"),
        }
    }
    Ok(out)
}

pub fn member(catalog: &mut Catalog, id: &str) -> Result<Option<Member>, Error> {
    Ok(members(catalog)?.into_iter().find(|m| m.id == id))
}

/// Whether `id` may connect: on the roster and not removed.
pub fn is_active_member(catalog: &mut Catalog, id: &str) -> Result<bool, Error> {
    Ok(member(catalog, id)?.is_some_and(|m| !m.removed))
}

pub fn put(catalog: &mut Catalog, m: &Member) -> Result<(), Error> {
    catalog.put_team_entry(&format!("{MEMBER_PREFIX}{}", m.id), Some(&json(m)))?;
    Ok(())
}

/// Adds (or re-adds) a device.
pub fn add(
    catalog: &mut Catalog,
    id: &str,
    person: &str,
    email: &str,
    added_by: &str,
) -> Result<Member, Error> {
    let m = Member {
        id: id.to_owned(),
        name: person.to_owned(),
        email: email.to_owned(),
        added_by: added_by.to_owned(),
        added_ms: now_ms(),
        removed: false,
        removed_by: None,
        removed_ms: None,
        addrs: Vec::new(),
    };
    put(catalog, &m)?;
    Ok(m)
}

/// Finds one member by id prefix, name or email.
pub fn find(catalog: &mut Catalog, who: &str) -> Result<Member, Error> {
    let all = members(catalog)?;
    let matches: Vec<&Member> = all
        .iter()
        .filter(|m| {
            m.id.starts_with(who) || m.name == who || (!m.email.is_empty() && m.email == who)
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Error::Team(format!("no member matches '{who}'"))),
        many => Err(Error::Team(format!(
            "'{who}' matches {} members: {}",
            many.len(),
            many.iter()
                .map(|m| format!("{} ({})", &m.id[..12.min(m.id.len())], m.name))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Marks a member removed: its devices are refused from now on and get nothing new.
pub fn remove(catalog: &mut Catalog, who: &str, by: &str) -> Result<Member, Error> {
    let mut m = find(catalog, who)?;
    m.removed = true;
    m.removed_by = Some(by.to_owned());
    m.removed_ms = Some(now_ms());
    put(catalog, &m)?;
    Ok(m)
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}
