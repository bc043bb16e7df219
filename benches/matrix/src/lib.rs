//! The benchmark matrix: fastsession beside the peers a user would pick instead, in the same
//! framework, on the same paths, in one run (see `BENCHMARKS.md`, "The matrix").
//!
//! A [`Server`] is a framework with one session library over one store, or the framework
//! alone ([`Library::Bare`], the floor every session cost is measured from). Every server
//! answers the four [`Path`]s; the bare one answers them all with a fixed body.

use std::fmt;

pub mod floor;

/// The HTTP framework a server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Framework {
    /// hyper 1 `http1` through hyper-util's `TowerToHyperService`: a tower service.
    Hyper,
    /// axum 0.8 on hyper, with each library's extractor.
    Axum,
    /// actix-web 4 with one worker, with each library's extractor.
    Actix,
}

/// The session library in a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Library {
    /// No session layer: the framework's own cost.
    Bare,
    /// fastsession.
    Fastsession,
    /// tower-sessions: 0.15 with its memory store, 0.14 with its Redis and sqlx stores.
    TowerSessions,
    /// actix-session 0.11.
    ActixSession,
    /// No library: the least the contract costs, written by hand ([`floor`]).
    Floor,
}

/// Where sessions are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Store {
    /// None (the bare framework).
    None,
    /// Sealed in the cookie.
    Cookie,
    /// In the server's memory.
    Memory,
    /// In files.
    Filesystem,
    /// In Redis.
    Redis,
    /// In Redis, with fastsession's near cache in each app server.
    RedisNear,
    /// In PostgreSQL.
    Postgres,
    /// In PostgreSQL, with fastsession's near cache in each app server.
    PostgresNear,
}

/// One server of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Server {
    /// Its framework.
    pub framework: Framework,
    /// Its session library.
    pub library: Library,
    /// Its store.
    pub store: Store,
}

impl Framework {
    /// Every framework, in table order.
    pub const ALL: [Framework; 3] = [Framework::Hyper, Framework::Axum, Framework::Actix];

    /// Its name on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Framework::Hyper => "hyper",
            Framework::Axum => "axum",
            Framework::Actix => "actix",
        }
    }
}

impl Library {
    /// Its name on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Library::Bare => "bare",
            Library::Fastsession => "fastsession",
            Library::TowerSessions => "tower-sessions",
            Library::ActixSession => "actix-session",
            Library::Floor => "floor",
        }
    }
}

impl Store {
    /// Every store, in table order.
    pub const ALL: [Store; 8] = [
        Store::None,
        Store::Cookie,
        Store::Memory,
        Store::Filesystem,
        Store::Redis,
        Store::RedisNear,
        Store::Postgres,
        Store::PostgresNear,
    ];

    /// Its name on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Store::None => "none",
            Store::Cookie => "cookie",
            Store::Memory => "memory",
            Store::Filesystem => "fs",
            Store::Redis => "redis",
            Store::RedisNear => "redis-near",
            Store::Postgres => "postgres",
            Store::PostgresNear => "postgres-near",
        }
    }

    /// The store whose peers this one is measured against: the same store without the near
    /// cache, which no peer has.
    #[must_use]
    pub fn peers_store(self) -> Store {
        match self {
            Store::RedisNear => Store::Redis,
            Store::PostgresNear => Store::Postgres,
            other => other,
        }
    }

    /// Whether it is fastsession with its near cache.
    #[must_use]
    pub fn is_near(self) -> bool {
        self != self.peers_store()
    }

    /// Whether the store is another server (Redis, PostgreSQL), whose CPU time the
    /// benchmark reads too.
    #[must_use]
    pub fn is_shared(self) -> bool {
        matches!(self.peers_store(), Store::Redis | Store::Postgres)
    }
}

impl Server {
    /// Parses `framework/library/store` (`hyper/bare` for a bare one).
    #[must_use]
    pub fn parse(text: &str) -> Option<Server> {
        SERVERS
            .iter()
            .copied()
            .find(|server| server.to_string() == text)
    }

    /// The bare server of the same framework: what this one's session cost is measured from.
    #[must_use]
    pub fn floor(self) -> Server {
        Server {
            library: Library::Bare,
            store: Store::None,
            ..self
        }
    }

    /// Whether this is fastsession.
    #[must_use]
    pub fn is_fastsession(self) -> bool {
        self.library == Library::Fastsession
    }

    /// Whether this is a peer (neither fastsession, nor the bare framework, nor the floor).
    #[must_use]
    pub fn is_peer(self) -> bool {
        !matches!(
            self.library,
            Library::Bare | Library::Fastsession | Library::Floor
        )
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.library == Library::Bare {
            write!(f, "{}/bare", self.framework.name())
        } else {
            write!(
                f,
                "{}/{}/{}",
                self.framework.name(),
                self.library.name(),
                self.store.name()
            )
        }
    }
}

const fn server(framework: Framework, library: Library, store: Store) -> Server {
    Server {
        framework,
        library,
        store,
    }
}

use Framework::{Actix, Axum, Hyper};
use Library::{ActixSession, Bare, Fastsession, Floor, TowerSessions};

/// Every server of the matrix: per framework, the bare one, fastsession over each store, each
/// peer that exists for that framework and store, and the floor of the memory and cookie
/// stores' cells where a peer has one.
pub const SERVERS: &[Server] = &[
    server(Hyper, Bare, Store::None),
    server(Hyper, Fastsession, Store::Cookie),
    server(Hyper, Fastsession, Store::Memory),
    server(Hyper, Fastsession, Store::Filesystem),
    server(Hyper, Fastsession, Store::Redis),
    server(Hyper, Fastsession, Store::RedisNear),
    server(Hyper, Fastsession, Store::Postgres),
    server(Hyper, Fastsession, Store::PostgresNear),
    server(Hyper, TowerSessions, Store::Memory),
    server(Hyper, TowerSessions, Store::Redis),
    server(Hyper, TowerSessions, Store::Postgres),
    server(Hyper, Floor, Store::Memory),
    server(Axum, Bare, Store::None),
    server(Axum, Fastsession, Store::Cookie),
    server(Axum, Fastsession, Store::Memory),
    server(Axum, Fastsession, Store::Filesystem),
    server(Axum, Fastsession, Store::Redis),
    server(Axum, Fastsession, Store::RedisNear),
    server(Axum, Fastsession, Store::Postgres),
    server(Axum, Fastsession, Store::PostgresNear),
    server(Axum, TowerSessions, Store::Memory),
    server(Axum, TowerSessions, Store::Redis),
    server(Axum, TowerSessions, Store::Postgres),
    server(Axum, Floor, Store::Memory),
    server(Actix, Bare, Store::None),
    server(Actix, Fastsession, Store::Cookie),
    server(Actix, Fastsession, Store::Memory),
    server(Actix, Fastsession, Store::Filesystem),
    server(Actix, Fastsession, Store::Redis),
    server(Actix, Fastsession, Store::RedisNear),
    server(Actix, Fastsession, Store::Postgres),
    server(Actix, Fastsession, Store::PostgresNear),
    server(Actix, ActixSession, Store::Cookie),
    server(Actix, ActixSession, Store::Redis),
    server(Actix, Floor, Store::Cookie),
];

/// What a request does with its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Path {
    /// `/hot`: the session exists (its cookie is sent); read the integer `n`, add one, write
    /// it back, answer the new number.
    Hot,
    /// `/read`: the session exists; read `n` and answer it, write nothing.
    Read,
    /// `/new`: no cookie is sent; insert `n = 1` into the new session, answer 1.
    New,
    /// `/untouched`: a cookie is sent, the handler never asks for its session; answer 1.
    Untouched,
}

impl Path {
    /// Every path, in table order.
    pub const ALL: [Path; 4] = [Path::Hot, Path::Read, Path::New, Path::Untouched];

    /// Its name in tables and on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Path::Hot => "hot",
            Path::Read => "read",
            Path::New => "new",
            Path::Untouched => "untouched",
        }
    }

    /// The request target.
    #[must_use]
    pub fn target(self) -> &'static str {
        match self {
            Path::Hot => "/hot",
            Path::Read => "/read",
            Path::New => "/new",
            Path::Untouched => "/untouched",
        }
    }

    /// Whether the number of distinct client sessions changes what the path does (it does
    /// where a session exists and is used).
    #[must_use]
    pub fn uses_sessions(self) -> bool {
        matches!(self, Path::Hot | Path::Read)
    }

    /// The path the target's requests map to, for the servers.
    #[must_use]
    pub fn of_target(target: &str) -> Option<Path> {
        Path::ALL.into_iter().find(|path| path.target() == target)
    }
}

/// The two session populations: every connection on one shared session, and 10 000
/// distinct sessions taken in turn.
pub const SESSIONS: [usize; 2] = [1, 10_000];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_has_its_floor_and_a_name_that_parses_back() {
        for server in SERVERS {
            assert_eq!(Server::parse(&server.to_string()), Some(*server));
            assert!(SERVERS.contains(&server.floor()), "{server}");
        }
    }

    #[test]
    fn paths_map_back_from_their_targets() {
        for path in Path::ALL {
            assert_eq!(Path::of_target(path.target()), Some(path));
        }
        assert_eq!(Path::of_target("/"), None);
    }
}
