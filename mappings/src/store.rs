//! The mapping tables in the database: reads, edits (one transaction with their audit rows and
//! the supplier's version), and the translators every process caches.
//!
//! # Freshness across processes
//! Every edit raises its supplier's row in `mapping_versions` in the edit's transaction. Each
//! process polls that small table ([`Mappings::watch`], once a second by default) and drops the
//! translators whose version moved, so another process uses an edit within one poll; the
//! editing process drops its own at once. The hot path (a lookup) never touches the database.
//!
//! # Concurrent edits
//! An edit's first statement raises the version row, which takes that row's lock (Postgres) or
//! the write lock (SQLite): edits of one supplier run one after the other, each planned on the
//! rows the previous one left.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::SupplierCode;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use serde::Serialize;

use crate::entity::{audit, mapping, version};
use crate::table::{self, Conflict, Edit, Mapping, Plan, Table};
use crate::{CodeKind, MappingError, Translator, seeds};

/// Rows written by one statement: well within both databases' bind limits.
const CHUNK: usize = 500;

/// Codes one `DELETE` names (one bind each; SQLite takes 32,766). Each statement scans the
/// table, which a large import has just filled with dead rows: 500 at a time made a 10,000-row
/// import spend two thirds of its time in 20 scans.
const DELETE_CHUNK: usize = 10_000;

domain::code_enum! {
    /// Through what a change was made, as the audit records it.
    pub enum Via ("change channel") {
        Api = "api",
        ApiCsv = "api_csv_import",
        Ui = "ui",
        UiCsv = "ui_csv_import",
        CliCsv = "cli_csv_import",
        Seed = "seed",
    }
}

/// Who makes a change: a staff key's id and label (none for the CLI and seeds), and through what.
#[derive(Debug, Clone)]
pub struct Actor {
    pub key_id: Option<String>,
    pub label: Option<String>,
    pub via: Via,
}

/// A stored row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MappingRow {
    pub supplier_code: String,
    #[serde(flatten)]
    pub mapping: Mapping,
    pub updated_at: DateTime<Utc>,
    pub updated_by_key: Option<String>,
    pub updated_by_label: Option<String>,
}

/// One change in the audit.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub supplier_code: String,
    /// `created`, `updated` or `deleted`.
    pub action: String,
    pub before: Option<Mapping>,
    pub after: Option<Mapping>,
    pub actor_key: Option<String>,
    pub actor_label: Option<String>,
    pub via: String,
    pub at: DateTime<Utc>,
}

/// Why an edit was not made.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The outbound direction would be ambiguous; nothing was written.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Conflict(Vec<Conflict>),
    #[error(transparent)]
    Store(#[from] MappingError),
}

impl From<sea_orm::DbErr> for EditError {
    fn from(e: sea_orm::DbErr) -> Self {
        EditError::Store(e.into())
    }
}

#[derive(Debug)]
struct Cached {
    version: i64,
    translator: Arc<Translator>,
}

/// The mapping tables, with each supplier's translator cached until its version moves.
#[derive(Debug, Clone)]
pub struct Mappings {
    db: DatabaseConnection,
    cache: Arc<RwLock<HashMap<SupplierCode, Cached>>>,
}

impl Mappings {
    pub fn new(db: DatabaseConnection) -> Self {
        Mappings { db, cache: Arc::default() }
    }

    /// The supplier's translator: cached, or read now.
    pub async fn translator(&self, supplier: &SupplierCode) -> Result<Arc<Translator>, MappingError> {
        if let Some(cached) = self.cache.read().expect("never poisoned").get(supplier) {
            return Ok(cached.translator.clone());
        }
        self.fresh_translator(supplier).await
    }

    /// The supplier's rows read now, bypassing the cache: before concluding a code has no
    /// mapping, since another process may have just added it.
    pub async fn fresh_translator(&self, supplier: &SupplierCode) -> Result<Arc<Translator>, MappingError> {
        // The version first: an edit committed between the two reads leaves an older version
        // with newer rows, which the next poll replaces; never the other way round.
        let version = self.versions(Some(supplier)).await?.get(supplier.as_str()).copied().unwrap_or(0);
        let rows = mapping::Entity::find()
            .filter(mapping::Column::Supplier.eq(supplier.as_str()))
            .all(&self.db)
            .await?
            .into_iter()
            .filter_map(|m| Some((m.kind.parse::<CodeKind>().ok()?, m.supplier_code.clone(), values(&m))));
        let translator = Arc::new(Translator::from_rows(supplier.clone(), rows));
        let cached = Cached { version, translator: translator.clone() };
        self.cache.write().expect("never poisoned").insert(supplier.clone(), cached);
        Ok(translator)
    }

    /// One poll: drops every cached translator whose supplier's version moved; how many.
    pub async fn refresh(&self) -> Result<usize, MappingError> {
        let versions = self.versions(None).await?;
        let mut cache = self.cache.write().expect("never poisoned");
        let before = cache.len();
        cache.retain(|supplier, c| versions.get(supplier.as_str()).copied().unwrap_or(0) == c.version);
        Ok(before - cache.len())
    }

    /// Polls every `every` for ever (spawn it); a failed poll is logged and the next one tried.
    pub async fn watch(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.refresh().await {
                Ok(0) => {}
                Ok(dropped) => tracing::debug!(dropped, "mapping translators refreshed"),
                Err(e) => tracing::warn!(error = %e, "polling the mapping versions failed"),
            }
        }
    }

    async fn versions(&self, supplier: Option<&SupplierCode>) -> Result<HashMap<String, i64>, MappingError> {
        let mut query =
            version::Entity::find().select_only().column(version::Column::Supplier).column(version::Column::Version);
        if let Some(s) = supplier {
            query = query.filter(version::Column::Supplier.eq(s.as_str()));
        }
        Ok(query.into_tuple::<(String, i64)>().all(&self.db).await?.into_iter().collect())
    }

    /// A table's rows in supplier-code order.
    pub async fn rows(&self, table: &Table) -> Result<Vec<MappingRow>, MappingError> {
        Ok(in_table(table).order_by_asc(mapping::Column::SupplierCode).all(&self.db).await?.iter().map(row).collect())
    }

    /// One row.
    pub async fn row(&self, table: &Table, supplier_code: &str) -> Result<Option<MappingRow>, MappingError> {
        let found = in_table(table).filter(mapping::Column::SupplierCode.eq(supplier_code)).one(&self.db).await?;
        Ok(found.as_ref().map(row))
    }

    /// Rows and active rows per (supplier, kind).
    pub async fn counts(&self) -> Result<HashMap<(String, String), (u64, u64)>, MappingError> {
        let grouped: Vec<(String, String, bool, i64)> = mapping::Entity::find()
            .select_only()
            .column(mapping::Column::Supplier)
            .column(mapping::Column::Kind)
            .column(mapping::Column::Active)
            .column_as(Expr::col(mapping::Column::SupplierCode).count(), "n")
            .group_by(mapping::Column::Supplier)
            .group_by(mapping::Column::Kind)
            .group_by(mapping::Column::Active)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut counts: HashMap<(String, String), (u64, u64)> = HashMap::new();
        for (supplier, kind, active, n) in grouped {
            let entry = counts.entry((supplier, kind)).or_default();
            entry.0 += n as u64;
            if active {
                entry.1 += n as u64;
            }
        }
        Ok(counts)
    }

    /// Makes an edit, or with `dry_run` only plans it: the rows it adds, changes and removes.
    /// A real edit writes its rows, one audit row per row touched and the supplier's new
    /// version in one transaction; an edit that changes nothing writes nothing.
    pub async fn edit(&self, table: &Table, edit: Edit, actor: &Actor, dry_run: bool) -> Result<Plan, EditError> {
        let txn = self.db.begin().await?;
        if !dry_run {
            bump_version(&txn, &table.supplier).await?;
        }
        let current: BTreeMap<String, Mapping> =
            in_table(table).all(&txn).await?.into_iter().map(|m| (m.supplier_code.clone(), values(&m))).collect();
        let plan = table::plan(table.kind, &current, edit).map_err(EditError::Conflict)?;
        if dry_run || plan.is_empty() {
            return Ok(plan); // dropping the transaction rolls it back
        }
        write_plan(&txn, table, &plan, actor).await?;
        txn.commit().await?;
        self.cache.write().expect("never poisoned").remove(&table.supplier);
        Ok(plan)
    }

    /// A table's changes, newest first: up to `limit` with ids below `before`.
    pub async fn audit(&self, table: &Table, before: Option<i64>, limit: u64) -> Result<Vec<AuditEntry>, MappingError> {
        let mut query = audit::Entity::find()
            .filter(audit::Column::Supplier.eq(table.supplier.as_str()))
            .filter(audit::Column::Kind.eq(table.kind.as_str()));
        if let Some(before) = before {
            query = query.filter(audit::Column::Id.lt(before));
        }
        let rows = query.order_by_desc(audit::Column::Id).limit(limit).all(&self.db).await?;
        rows.into_iter().map(audit_entry).collect()
    }

    /// Loads a supplier's seed tables ([`seeds`]) when it has never had a row nor an edit, so
    /// that staff edits (even deleting every row) survive restarts. Rows written.
    pub async fn seed_if_empty(&self, supplier: &SupplierCode, protocol: &str) -> Result<u64, EditError> {
        let touched = !self.versions(Some(supplier)).await?.is_empty()
            || mapping::Entity::find()
                .filter(mapping::Column::Supplier.eq(supplier.as_str()))
                .one(&self.db)
                .await?
                .is_some();
        if touched {
            return Ok(0);
        }
        let actor = Actor { key_id: None, label: None, via: Via::Seed };
        let mut written = 0;
        for (kind, entries) in seeds::for_protocol(protocol) {
            let table = Table { supplier: supplier.clone(), kind };
            // Two processes starting together both get here; the second plans on the first's rows
            // and writes nothing.
            let plan = self.edit(&table, Edit::Replace(entries), &actor, false).await?;
            written += plan.added.len() as u64;
        }
        Ok(written)
    }
}

fn in_table(table: &Table) -> sea_orm::Select<mapping::Entity> {
    mapping::Entity::find()
        .filter(mapping::Column::Supplier.eq(table.supplier.as_str()))
        .filter(mapping::Column::Kind.eq(table.kind.as_str()))
}

fn values(m: &mapping::Model) -> Mapping {
    Mapping {
        bookhub_code: m.bookhub_code.clone(),
        description: m.description.clone(),
        active: m.active,
        outbound: m.outbound,
    }
}

fn row(m: &mapping::Model) -> MappingRow {
    MappingRow {
        supplier_code: m.supplier_code.clone(),
        mapping: values(m),
        updated_at: m.updated_at,
        updated_by_key: m.updated_by_key.clone(),
        updated_by_label: m.updated_by_label.clone(),
    }
}

fn audit_entry(m: audit::Model) -> Result<AuditEntry, MappingError> {
    let corrupt = || MappingError::Corrupt { row: format!("mapping_audit/{}", m.id) };
    let parse = |v: &Option<serde_json::Value>| {
        v.clone().map(serde_json::from_value::<Mapping>).transpose().map_err(|_| corrupt())
    };
    Ok(AuditEntry {
        before: parse(&m.before)?,
        after: parse(&m.after)?,
        id: m.id,
        supplier_code: m.supplier_code,
        action: m.action,
        actor_key: m.actor_key,
        actor_label: m.actor_label,
        via: m.via,
        at: m.at,
    })
}

/// Raises the supplier's version (creating its row at 1): the edit's first write, which also
/// serialises edits of one supplier.
async fn bump_version(db: &impl ConnectionTrait, supplier: &SupplierCode) -> Result<(), sea_orm::DbErr> {
    let first = version::ActiveModel {
        supplier: Set(supplier.as_str().to_owned()),
        version: Set(1),
        changed_at: Set(Utc::now()),
    };
    let raise = OnConflict::column(version::Column::Supplier)
        .value(version::Column::Version, Expr::col((version::Entity, version::Column::Version)).add(1))
        .update_column(version::Column::ChangedAt)
        .to_owned();
    version::Entity::insert(first).on_conflict(raise).exec_without_returning(db).await?;
    Ok(())
}

async fn write_plan(
    db: &impl ConnectionTrait,
    table: &Table,
    plan: &Plan,
    actor: &Actor,
) -> Result<(), sea_orm::DbErr> {
    let now = Utc::now();
    let gone: Vec<&str> = plan
        .removed
        .iter()
        .map(|(code, _)| code.as_str())
        .chain(plan.changed.iter().map(|c| c.supplier_code.as_str()))
        .collect();
    for codes in gone.chunks(DELETE_CHUNK) {
        mapping::Entity::delete_many()
            .filter(mapping::Column::Supplier.eq(table.supplier.as_str()))
            .filter(mapping::Column::Kind.eq(table.kind.as_str()))
            .filter(mapping::Column::SupplierCode.is_in(codes.iter().copied()))
            .exec(db)
            .await?;
    }
    let written: Vec<(&str, &Mapping)> = plan
        .changed
        .iter()
        .map(|c| (c.supplier_code.as_str(), &c.after))
        .chain(plan.added.iter().map(|(code, m)| (code.as_str(), m)))
        .collect();
    for rows in written.chunks(CHUNK) {
        let models = rows.iter().map(|(code, m)| mapping::ActiveModel {
            supplier: Set(table.supplier.as_str().to_owned()),
            kind: Set(table.kind.as_str().to_owned()),
            supplier_code: Set((*code).to_owned()),
            bookhub_code: Set(m.bookhub_code.clone()),
            description: Set(m.description.clone()),
            active: Set(m.active),
            outbound: Set(m.outbound),
            updated_at: Set(now),
            updated_by_key: Set(actor.key_id.clone()),
            updated_by_label: Set(actor.label.clone()),
        });
        mapping::Entity::insert_many(models).exec_without_returning(db).await?;
    }
    let json = |m: &Mapping| Some(serde_json::to_value(m).expect("a mapping serialises"));
    let changes = plan
        .added
        .iter()
        .map(|(code, m)| (code, "created", None, json(m)))
        .chain(plan.changed.iter().map(|c| (&c.supplier_code, "updated", json(&c.before), json(&c.after))))
        .chain(plan.removed.iter().map(|(code, m)| (code, "deleted", json(m), None)))
        .collect::<Vec<_>>();
    for rows in changes.chunks(CHUNK) {
        let models = rows.iter().map(|(code, action, before, after)| audit::ActiveModel {
            supplier: Set(table.supplier.as_str().to_owned()),
            kind: Set(table.kind.as_str().to_owned()),
            supplier_code: Set((*code).clone()),
            action: Set((*action).to_owned()),
            before: Set(before.clone()),
            after: Set(after.clone()),
            actor_key: Set(actor.key_id.clone()),
            actor_label: Set(actor.label.clone()),
            via: Set(actor.via.as_str().to_owned()),
            at: Set(now),
            ..Default::default()
        });
        audit::Entity::insert_many(models).exec_without_returning(db).await?;
    }
    Ok(())
}
