//! `matrix-bench`: runs the benchmark matrix and prints its tables (see `BENCHMARKS.md`, "The
//! matrix", and `bash benches/matrix/run.sh --help`).
//!
//! It starts every selected `matrix-server` at once, pinned to the server CPU, and measures
//! each cell (server × path × client sessions) with `load-gen` pinned to the other CPU, one
//! cell at a time, saturated, in rounds that each start one cell later. A cell's session
//! cost is its server's CPU time per request minus that of the same framework's bare server
//! in the same round. With `--instructions`, each cell is also counted under callgrind:
//! instructions, and misses of a simulated L1 instruction cache. The misses measure the code a
//! request runs through (64-byte lines fetched), which the kernel's share of each request
//! evicts again: on loopback, CPU time per request follows them more closely than it follows
//! the instructions (BENCHMARKS.md).

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path as FsPath, PathBuf};
use std::process::{Child, Command, Stdio};

use fastsession_bench_matrix::{Framework, Library, Path, SERVERS, SESSIONS, Server, Store};

type BoxError = Box<dyn StdError + Send + Sync>;

/// `load-gen`'s connections, and so the client sessions of the paths where their number
/// does not matter (one per connection).
const CONNECTIONS: usize = 32;

const USAGE: &str = "\
usage: matrix-bench [options]
  --rounds N          rounds (default 3)
  --warmup SECS       per cell, before the measured window (default 0.5)
  --duration SECS     measured window per cell (default 1.5)
  --frameworks LIST   hyper,axum,actix (default all)
  --stores LIST       cookie,memory,fs,redis,redis-near,postgres,postgres-near (default all;
                      *-near is fastsession with its near cache, beside the store's peers)
  --paths LIST        hot,read,new,untouched,mix (default all; mix: 90% read, 10% hot)
  --sessions LIST     client sessions on hot and read: 1 (one shared by every connection)
                      and 10000 (default both)
  --instructions N    also count user-space instructions and simulated L1 instruction-
                      cache misses per request under callgrind (valgrind, --cache-sim=yes):
                      N and 6 N requests, the difference (0: not, the default)
  --raw FILE          append every slice's RESULT line to FILE
  --server-cpu N      CPU for the servers (default 0)
  --gen-cpu N         CPU for the load generator (default 1)
  --namespace NS      Redis key prefix and PostgreSQL schema prefix (default fsmatrix_PID)
  --app-servers N     run N processes of each server (default 1); load-gen spreads its
                      connections over them, so that sessions move between app servers
                      sharing one Redis or PostgreSQL, and their CPU is summed

Redis must run at FASTSESSION_BENCH_REDIS_URL (default redis://127.0.0.1:6379) and
PostgreSQL at FASTSESSION_BENCH_POSTGRES_URL (default postgres://127.0.0.1:5432/test) for
those stores; leave them out with --stores otherwise.";

struct Options {
    rounds: usize,
    warmup: f64,
    duration: f64,
    frameworks: Vec<Framework>,
    stores: Vec<Store>,
    paths: Vec<Workload>,
    sessions: Vec<usize>,
    instructions: u64,
    raw: Option<PathBuf>,
    server_cpu: usize,
    gen_cpu: usize,
    namespace: String,
    app_servers: usize,
}

fn parse_options() -> Result<Options, BoxError> {
    let mut options = Options {
        rounds: 3,
        warmup: 0.5,
        duration: 1.5,
        frameworks: Framework::ALL.to_vec(),
        stores: Store::ALL.to_vec(),
        paths: Workload::ALL.to_vec(),
        sessions: SESSIONS.to_vec(),
        instructions: 0,
        raw: None,
        server_cpu: 0,
        gen_cpu: 1,
        namespace: format!("fsmatrix_{}", std::process::id()),
        app_servers: 1,
    };
    fn list<T: Copy>(
        text: &str,
        all: &[T],
        name: impl Fn(T) -> String,
    ) -> Result<Vec<T>, BoxError> {
        text.split(',')
            .map(|item| {
                all.iter()
                    .copied()
                    .find(|t| name(*t) == item)
                    .ok_or_else(|| format!("unknown {item:?}\n{USAGE}").into())
            })
            .collect()
    }
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--rounds" => options.rounds = value()?.parse()?,
            "--warmup" => options.warmup = value()?.parse()?,
            "--duration" => options.duration = value()?.parse()?,
            "--frameworks" => {
                options.frameworks = list(&value()?, &Framework::ALL, |f| f.name().to_owned())?;
            }
            "--stores" => {
                let mut stores = list(&value()?, &Store::ALL, |s| s.name().to_owned())?;
                stores.insert(0, Store::None);
                options.stores = stores;
            }
            "--paths" => {
                options.paths = list(&value()?, &Workload::ALL, |p| p.name().to_owned())?;
            }
            "--app-servers" => options.app_servers = value()?.parse()?,
            "--sessions" => {
                options.sessions = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?;
            }
            "--instructions" => options.instructions = value()?.parse()?,
            "--raw" => options.raw = Some(value()?.into()),
            "--server-cpu" => options.server_cpu = value()?.parse()?,
            "--gen-cpu" => options.gen_cpu = value()?.parse()?,
            "--namespace" => options.namespace = value()?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    if !(1..=8).contains(&options.app_servers) {
        return Err("--app-servers must be 1 to 8".into());
    }
    if options.rounds == 0 && options.instructions == 0 {
        return Err("nothing to do: --rounds 0 without --instructions".into());
    }
    Ok(options)
}

/// What the clients of a cell ask: one path, or a mix of two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Workload {
    Path(Path),
    /// Nine reads (`/read`) for each read-modify-write (`/hot`).
    Mix,
}

impl Workload {
    const ALL: [Workload; 5] = [
        Workload::Path(Path::Hot),
        Workload::Path(Path::Read),
        Workload::Path(Path::New),
        Workload::Path(Path::Untouched),
        Workload::Mix,
    ];

    fn name(self) -> &'static str {
        match self {
            Workload::Path(path) => path.name(),
            Workload::Mix => "mix",
        }
    }

    fn uses_sessions(self) -> bool {
        match self {
            Workload::Path(path) => path.uses_sessions(),
            Workload::Mix => true,
        }
    }
}

/// One measurement: a server, a workload, and the number of client sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Cell {
    server: Server,
    path: Workload,
    sessions: usize,
}

impl Cell {
    /// The cells of a server: every selected path, the session populations where they
    /// matter. A bare server has one cell, its floor.
    fn of(server: Server, options: &Options) -> Vec<Cell> {
        if server.library == Library::Bare {
            return vec![
                Cell {
                    server,
                    path: Workload::Path(Path::Untouched),
                    sessions: CONNECTIONS,
                }
                .floor(),
            ];
        }
        let mut cells = Vec::new();
        for &path in &options.paths {
            if path.uses_sessions() {
                for &sessions in &options.sessions {
                    cells.push(Cell {
                        server,
                        path,
                        sessions,
                    });
                }
            } else {
                cells.push(Cell {
                    server,
                    path,
                    sessions: CONNECTIONS,
                });
            }
        }
        cells
    }

    /// The bare framework's one cell: what this cell's session cost is measured from.
    fn floor(self) -> Cell {
        Cell {
            server: self.server.floor(),
            path: Workload::Path(Path::Untouched),
            sessions: CONNECTIONS,
        }
    }

    /// `load-gen`'s options for this cell (besides address, pids and timing).
    fn generator_args(self) -> Vec<String> {
        let path = match self.path {
            Workload::Path(path) => path,
            Workload::Mix => Path::Read,
        };
        let mut args = vec!["--path".to_owned(), path.target().to_owned()];
        if self.path.uses_sessions() {
            args.extend(["--sessions".to_owned(), self.sessions.to_string()]);
            args.extend(["--prime".to_owned(), Path::Hot.target().to_owned()]);
        }
        // (load-gen checks only sessions of one connection each.)
        match self.path {
            Workload::Path(Path::Hot) => args.push("--counter".to_owned()),
            Workload::Path(Path::Read) => args.push("--same".to_owned()),
            Workload::Path(Path::New) => args.push("--no-cookie".to_owned()),
            Workload::Mix => args.extend(
                ["--write-every", "10", "--write-path", Path::Hot.target()].map(str::to_owned),
            ),
            _ => {}
        }
        args
    }

    fn label(self) -> String {
        if self.path.uses_sessions() {
            format!("{} {} ×{}", self.server, self.path.name(), self.sessions)
        } else {
            format!("{} {}", self.server, self.path.name())
        }
    }
}

/// A child process that is killed when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pinned(program: &FsPath, cpu: usize) -> Command {
    let mut command = Command::new("taskset");
    command.arg("-c").arg(cpu.to_string()).arg(program);
    command
}

/// A running `matrix-server`.
struct Running {
    guard: Guard,
    addr: String,
}

/// Starts `server`, with `wrapper` (e.g. valgrind) in front of it if given, and waits for its
/// address.
fn start(
    bin: &FsPath,
    options: &Options,
    dir: &FsPath,
    server: Server,
    wrapper: Option<&[String]>,
) -> Result<Running, BoxError> {
    let program = bin.join("matrix-server");
    let mut command = match wrapper {
        Some(wrapper) => {
            let mut command = pinned(FsPath::new(&wrapper[0]), options.server_cpu);
            command.args(&wrapper[1..]).arg(&program);
            command
        }
        None => pinned(&program, options.server_cpu),
    };
    let mut guard = Guard(
        command
            .arg(server.to_string())
            .args([
                "127.0.0.1:0",
                "--exit-on-stdin-eof",
                "--namespace",
                &options.namespace,
            ])
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if wrapper.is_some() {
                Stdio::null()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .map_err(|e| format!("starting matrix-server (is taskset installed?): {e}"))?,
    );
    let stdout = guard.0.stdout.take().ok_or("no server stdout")?;
    let mut addr = String::new();
    BufReader::new(stdout).read_line(&mut addr)?;
    let addr = addr.trim().to_owned();
    if addr.is_empty() {
        let status = guard.0.wait()?;
        let hint = match server.store {
            Store::Redis | Store::RedisNear => "; is Redis running? (redis-server --daemonize yes)",
            Store::Postgres | Store::PostgresNear => "; is PostgreSQL running? (see .ci/run)",
            _ => "",
        };
        return Err(format!("matrix-server {server} did not start ({status}){hint}").into());
    }
    Ok(Running { guard, addr })
}

/// The results of one slice, from `load-gen`'s `RESULT` line.
type Run = BTreeMap<String, f64>;

/// Runs `load-gen` for one cell and parses its `RESULT` line.
fn generate(
    bin: &FsPath,
    options: &Options,
    cell: Cell,
    running: &[Running],
    timing: &[String],
) -> Result<(Run, String), BoxError> {
    let joined =
        |each: &dyn Fn(&Running) -> String| running.iter().map(each).collect::<Vec<_>>().join(",");
    let mut command = pinned(&bin.join("load-gen"), options.gen_cpu);
    command
        .args(["--addr", &joined(&|r| r.addr.clone())])
        .args(["--server-pid", &joined(&|r| r.guard.0.id().to_string())])
        .args(cell.generator_args())
        .args(timing);
    match cell.server.store {
        Store::Redis | Store::RedisNear => command.args(["--store-process", "redis-server"]),
        Store::Postgres | Store::PostgresNear => command.args(["--store-process", "postgres"]),
        _ => &mut command,
    };
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("starting load-gen: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .ok_or_else(|| format!("load-gen printed no RESULT for {}:\n{stdout}", cell.label()))?;
    if !output.status.success() {
        return Err(format!("load-gen failed for {}: {line}", cell.label()).into());
    }
    let mut run = Run::new();
    for pair in line.split_ascii_whitespace().skip(1) {
        let (key, value) = pair.split_once('=').ok_or("malformed RESULT")?;
        run.insert(key.to_owned(), value.parse()?);
    }
    Ok((run, line.to_owned()))
}

/// What callgrind counts per request of one cell.
#[derive(Debug, Clone, Copy)]
struct Counts {
    instructions: f64,
    /// Misses of the simulated L1 instruction cache: the code lines a request fetches.
    i1_misses: f64,
}

/// Counts per request of one cell: the server under callgrind serves `n` and then, in a
/// fresh process, `6 n` requests (after the same priming); the difference over `5 n`.
fn counts(
    bin: &FsPath,
    options: &Options,
    dir: &FsPath,
    cell: Cell,
    n: u64,
) -> Result<Counts, BoxError> {
    let mut totals = Vec::new();
    for requests in [n, 6 * n] {
        let out = dir.join(format!("callgrind.{}", std::process::id()));
        let wrapper = vec![
            "valgrind".to_owned(),
            "--tool=callgrind".to_owned(),
            "--cache-sim=yes".to_owned(),
            format!("--callgrind-out-file={}", out.display()),
        ];
        let mut running = start(bin, options, dir, cell.server, Some(&wrapper))?;
        let timing = ["--warmup", "0", "--duration", "600", "--max-requests"]
            .iter()
            .map(|s| (*s).to_owned())
            .chain([requests.to_string()])
            .collect::<Vec<_>>();
        generate(bin, options, cell, std::slice::from_ref(&running), &timing)?;
        // EOF on its stdin ends the server, and callgrind writes its counts.
        drop(running.guard.0.stdin.take());
        running.guard.0.wait()?;
        let text = std::fs::read_to_string(&out).map_err(|e| {
            format!(
                "callgrind wrote no counts for {} (is valgrind installed?): {e}",
                cell.label()
            )
        })?;
        let _ = std::fs::remove_file(&out);
        totals.push(totals_of(&text)?);
    }
    let per_request = |total: f64, base: f64| (total - base) / (5 * n) as f64;
    Ok(Counts {
        instructions: per_request(totals[1].0, totals[0].0),
        i1_misses: per_request(totals[1].1, totals[0].1),
    })
}

/// Instructions and L1 instruction-cache misses in all, from a callgrind output file.
fn totals_of(text: &str) -> Result<(f64, f64), BoxError> {
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|l| l.split_ascii_whitespace().collect::<Vec<_>>())
    };
    let (Some(events), Some(summary)) = (field("events:"), field("summary:")) else {
        return Err("no events or summary in callgrind's output".into());
    };
    let event = |name: &str| -> Result<f64, BoxError> {
        let at = events
            .iter()
            .position(|e| *e == name)
            .ok_or_else(|| format!("callgrind counted no {name} (was --cache-sim=yes given?)"))?;
        Ok(summary.get(at).ok_or("short summary")?.parse()?)
    };
    Ok((event("Ir")?, event("I1mr")?))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

fn range(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

/// What the rounds measured per cell: one `Run` per round.
type Results = BTreeMap<Cell, Vec<Run>>;

/// The medians of one cell, with the session cost against its floor round by round.
#[derive(Debug, Clone, Copy)]
struct Summary {
    rounds: usize,
    rps: f64,
    p99: f64,
    cpu: f64,
    cost: f64,
    cost_range: (f64, f64),
    /// The session cost in user-space CPU alone: the kernel's share, mostly the sockets'
    /// work, carries most of a shared machine's noise.
    user_cost: f64,
    store_cpu: f64,
    instructions: f64,
    i1_misses: f64,
}

fn summarize(cell: Cell, results: &Results, counted: &BTreeMap<Cell, Counts>) -> Option<Summary> {
    let floor_counts = counted.get(&cell.floor()).filter(|_| cell.floor() != cell);
    let counted = counted.get(&cell).copied();
    let runs = results.get(&cell).map_or(&[][..], Vec::as_slice);
    if runs.is_empty() && counted.is_none() {
        return None;
    }
    let floor = results.get(&cell.floor()).map_or(&[][..], Vec::as_slice);
    let get = |key: &str| {
        runs.iter()
            .map(|r| r.get(key).copied().unwrap_or(f64::NAN))
            .collect::<Vec<_>>()
    };
    // Round by round: the floor's slice of the same round.
    let above_floor = |cpu: fn(&Run) -> f64| -> Vec<f64> {
        runs.iter()
            .zip(floor)
            .map(|(run, floor)| cpu(run) - cpu(floor))
            .collect()
    };
    let costs = above_floor(|run| run["server_cpu_us"]);
    let user_costs = above_floor(|run| {
        run.get("server_user_share")
            .map_or(f64::NAN, |share| run["server_cpu_us"] * share)
    });
    Some(Summary {
        rounds: runs.len(),
        rps: median(get("rps")),
        p99: median(get("p99_us")),
        cpu: median(get("server_cpu_us")),
        cost: median(costs.clone()),
        cost_range: range(&costs),
        user_cost: median(user_costs),
        store_cpu: median(get("store_cpu_us")),
        instructions: counted.map_or(f64::NAN, |c| {
            c.instructions - floor_counts.map_or(0.0, |f| f.instructions)
        }),
        i1_misses: counted.map_or(f64::NAN, |c| {
            c.i1_misses - floor_counts.map_or(0.0, |f| f.i1_misses)
        }),
    })
}

fn num(value: f64, digits: usize) -> String {
    if value.is_finite() {
        format!("{value:.digits$}")
    } else {
        "–".to_owned()
    }
}

/// The best peers of a cell's framework, store, path and sessions.
#[derive(Debug, Clone, Copy)]
struct BestPeer {
    /// The lowest session cost.
    cheapest: Summary,
    /// The highest throughput.
    fastest: Summary,
    /// The lowest session cost in user-space CPU (NaN if none was measured).
    user_cost: f64,
}

fn best_peer(cell: Cell, summaries: &BTreeMap<Cell, Summary>) -> Option<BestPeer> {
    let peers: Vec<Summary> = summaries
        .iter()
        .filter(|(c, _)| {
            c.server.is_peer()
                && c.server.framework == cell.server.framework
                && c.server.store == cell.server.store.peers_store()
                && c.path == cell.path
                && c.sessions == cell.sessions
        })
        .map(|(_, s)| *s)
        .collect();
    let cheapest = peers
        .iter()
        .copied()
        .min_by(|a, b| a.cost.total_cmp(&b.cost))?;
    let fastest = peers
        .iter()
        .copied()
        .max_by(|a, b| a.rps.total_cmp(&b.rps))?;
    let user_cost = peers
        .iter()
        .map(|s| s.user_cost)
        .filter(|c| c.is_finite())
        .fold(f64::NAN, f64::min);
    Some(BestPeer {
        cheapest,
        fastest,
        user_cost,
    })
}

fn print_tables(summaries: &BTreeMap<Cell, Summary>) {
    println!(
        "\n| framework | store | path | sessions | library | n | req/s | p99 µs | app CPU µs/req | session cost µs (range) | cost ÷ best peer | session user µs | user ÷ best peer | req/s ÷ best peer | store CPU µs/req | app + store µs/req | session instr/req | session I1 misses/req |"
    );
    println!(
        "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (cell, s) in summaries {
        let peer = best_peer(*cell, summaries)
            .filter(|_| cell.server.is_fastsession() || cell.server.library == Library::Floor);
        let (cost_ratio, rps_ratio, user_ratio) = match peer {
            Some(best) => (
                s.cost / best.cheapest.cost,
                s.rps / best.fastest.rps,
                s.user_cost / best.user_cost,
            ),
            None => (f64::NAN, f64::NAN, f64::NAN),
        };
        let store = cell.server.store.is_shared();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} ({}–{}) | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell.server.framework.name(),
            cell.server.store.name(),
            if cell.server.library == Library::Bare {
                "(floor)"
            } else {
                cell.path.name()
            },
            if cell.path.uses_sessions() && cell.server.library != Library::Bare {
                cell.sessions.to_string()
            } else {
                "–".to_owned()
            },
            cell.server.library.name(),
            s.rounds,
            num(s.rps, 0),
            num(s.p99, 0),
            num(s.cpu, 2),
            num(s.cost, 2),
            num(s.cost_range.0, 2),
            num(s.cost_range.1, 2),
            num(cost_ratio, 2),
            num(s.user_cost, 2),
            num(user_ratio, 2),
            num(rps_ratio, 2),
            if store {
                num(s.store_cpu, 2)
            } else {
                "–".to_owned()
            },
            if store {
                num(s.cpu + s.store_cpu, 2)
            } else {
                "–".to_owned()
            },
            num(s.instructions, 0),
            num(s.i1_misses, 0),
        );
    }
}

/// The targets, cell by cell: met or not, on the medians of this run.
fn print_targets(summaries: &BTreeMap<Cell, Summary>) {
    println!("\n| target | cell | fastsession | best peer | ratio | met |");
    println!("|---|---|---:|---:|---:|---|");
    let mut met = 0;
    let mut missed = 0;
    for (cell, s) in summaries.iter().filter(|(c, _)| c.server.is_fastsession()) {
        let mut check = |target: &str, ours: f64, theirs: f64, ratio: f64, ok: bool| {
            if ok {
                met += 1
            } else {
                missed += 1
            }
            println!(
                "| {target} | {} | {} | {} | {} | {} |",
                cell.label(),
                num(ours, 2),
                num(theirs, 2),
                num(ratio, 2),
                if ok { "yes" } else { "**no**" }
            );
        };
        if cell.path == Workload::Path(Path::Untouched) {
            check(
                "untouched cost ≤ 0.1 µs",
                s.cost,
                f64::NAN,
                f64::NAN,
                s.cost <= 0.1,
            );
            continue;
        }
        let Some(BestPeer {
            cheapest, fastest, ..
        }) = best_peer(*cell, summaries)
        else {
            continue;
        };
        if cell.server.store.is_near() {
            // The near cache's own targets: reads past the peers and near the memory store,
            // writes no slower than without it.
            let ours = |store: Store| {
                let sibling = Cell {
                    server: Server {
                        store,
                        ..cell.server
                    },
                    ..*cell
                };
                summaries.get(&sibling).map_or(f64::NAN, |s| s.rps)
            };
            match cell.path {
                Workload::Path(Path::Read) => {
                    let ratio = s.rps / fastest.rps;
                    check(
                        "near read req/s ≥ 2× best peer",
                        s.rps,
                        fastest.rps,
                        ratio,
                        ratio >= 2.0,
                    );
                    let memory = ours(Store::Memory);
                    let ratio = s.rps / memory;
                    check(
                        "near read req/s ≥ 0.9× fastsession memory",
                        s.rps,
                        memory,
                        ratio,
                        ratio >= 0.9,
                    );
                }
                Workload::Mix => {
                    let ratio = s.rps / fastest.rps;
                    check(
                        "near mix req/s ≥ 1.5× best peer",
                        s.rps,
                        fastest.rps,
                        ratio,
                        ratio >= 1.5,
                    );
                }
                Workload::Path(Path::Hot) => {
                    let plain = ours(cell.server.store.peers_store());
                    let ratio = s.rps / plain;
                    check(
                        "near hot req/s ≥ 1.0× fastsession without it",
                        s.rps,
                        plain,
                        ratio,
                        ratio >= 1.0,
                    );
                }
                _ => {}
            }
        }
        if cell.server.store.is_shared() {
            let ratio = s.rps / fastest.rps;
            check(
                "req/s ≥ 1.0× best peer",
                s.rps,
                fastest.rps,
                ratio,
                ratio >= 1.0,
            );
            let ratio = s.cost / cheapest.cost;
            check(
                "app cost ≤ best peer",
                s.cost,
                cheapest.cost,
                ratio,
                ratio <= 1.0,
            );
        } else {
            let ratio = s.cost / cheapest.cost;
            check(
                "cost ≤ 0.5× best peer",
                s.cost,
                cheapest.cost,
                ratio,
                ratio <= 0.5,
            );
        }
    }
    println!("\ntargets met: {met}, missed: {missed}");
}

fn main() -> Result<(), BoxError> {
    let options = parse_options()?;
    let bin = std::env::current_exe()?
        .parent()
        .ok_or("no directory for matrix-bench")?
        .to_owned();
    for needed in ["matrix-server", "load-gen"] {
        if !bin.join(needed).exists() {
            return Err(format!(
                "{needed} is not built next to matrix-bench: run benches/matrix/run.sh"
            )
            .into());
        }
    }
    let servers: Vec<Server> = SERVERS
        .iter()
        .copied()
        .filter(|s| options.frameworks.contains(&s.framework) && options.stores.contains(&s.store))
        .collect();
    let cells: Vec<Cell> = servers
        .iter()
        .flat_map(|&s| Cell::of(s, &options))
        .collect();
    let dir = tempfile::Builder::new().prefix("fsmatrix").tempdir()?;
    let mut raw = match &options.raw {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        ),
        None => None,
    };
    let started = std::time::Instant::now();
    eprintln!(
        "matrix-bench: {} servers, {} cells, {} rounds",
        servers.len(),
        cells.len(),
        options.rounds
    );

    let mut results = Results::new();
    if options.rounds > 0 {
        let mut running = BTreeMap::new();
        for &server in &servers {
            let mut processes = Vec::new();
            for _ in 0..options.app_servers {
                processes.push(start(&bin, &options, dir.path(), server, None)?);
            }
            running.insert(server, processes);
        }
        let timing: Vec<String> = [
            "--warmup".to_owned(),
            options.warmup.to_string(),
            "--duration".to_owned(),
            options.duration.to_string(),
        ]
        .into();
        for round in 0..options.rounds {
            for k in 0..cells.len() {
                let cell = cells[(k + round) % cells.len()];
                let (run, line) = generate(&bin, &options, cell, &running[&cell.server], &timing)?;
                if let Some(raw) = raw.as_mut() {
                    writeln!(
                        raw,
                        "round={round} cell={} {line}",
                        cell.label().replace(' ', "_")
                    )?;
                }
                results.entry(cell).or_default().push(run);
            }
            eprintln!(
                "matrix-bench: round {} done after {:.0} s",
                round + 1,
                started.elapsed().as_secs_f64()
            );
        }
        drop(running);
    }
    let mut counted = BTreeMap::new();
    if options.instructions > 0 {
        for &cell in &cells {
            let cell_counts = counts(&bin, &options, dir.path(), cell, options.instructions)?;
            eprintln!(
                "matrix-bench: {}: {:.0} instructions, {:.0} I1 misses per request",
                cell.label(),
                cell_counts.instructions,
                cell_counts.i1_misses
            );
            counted.insert(cell, cell_counts);
        }
    }
    for &server in servers.iter().filter(|s| s.store.is_shared()) {
        let status = Command::new(bin.join("matrix-server"))
            .args(["--cleanup", &server.to_string(), &options.namespace])
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!(
                "matrix-bench: the clean-up of {server} ({}) failed",
                options.namespace
            );
        }
    }

    let summaries: BTreeMap<Cell, Summary> = cells
        .iter()
        .filter_map(|&cell| Some((cell, summarize(cell, &results, &counted)?)))
        .collect();
    println!(
        "matrix-bench: {} rounds of {} s warm-up + {} s per cell; servers on CPU {}, load-gen on CPU {}; {:.0} s in all",
        options.rounds,
        options.warmup,
        options.duration,
        options.server_cpu,
        options.gen_cpu,
        started.elapsed().as_secs_f64()
    );
    print_tables(&summaries);
    if options.rounds > 0 {
        print_targets(&summaries);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The user-space session cost is each round's user CPU less the bare server's in the
    /// same round, from load-gen's total and user share; without a share, none.
    #[test]
    fn user_cost_is_taken_round_by_round() {
        let run = |cpu: f64, share: Option<f64>| {
            let mut run = Run::new();
            run.insert("server_cpu_us".to_owned(), cpu);
            if let Some(share) = share {
                run.insert("server_user_share".to_owned(), share);
            }
            run
        };
        let server = Server::parse("hyper/fastsession/memory").unwrap();
        let cell = Cell {
            server,
            path: Workload::Path(Path::Hot),
            sessions: 1,
        };
        let mut results = Results::new();
        results.insert(
            cell,
            vec![
                run(10.0, Some(0.5)),
                run(12.0, Some(0.5)),
                run(20.0, Some(0.5)),
            ],
        );
        results.insert(
            cell.floor(),
            vec![
                run(8.0, Some(0.25)),
                run(8.0, Some(0.25)),
                run(8.0, Some(0.25)),
            ],
        );
        let summary = summarize(cell, &results, &BTreeMap::new()).unwrap();
        // 5 - 2, 6 - 2, 10 - 2: the median is 4.
        assert_eq!(summary.user_cost, 4.0);
        assert_eq!(summary.cost, 4.0);
        results.insert(cell, vec![run(10.0, None)]);
        let summary = summarize(cell, &results, &BTreeMap::new()).unwrap();
        assert!(summary.user_cost.is_nan());
    }

    /// The mix reads nine times for each write and checks no counter; the near cache's cells
    /// are weighed against Redis's peers.
    #[test]
    fn the_mix_writes_one_request_in_ten_and_the_near_cache_faces_redis_peers() {
        let server = Server::parse("hyper/fastsession/redis-near").unwrap();
        let cell = Cell {
            server,
            path: Workload::Mix,
            sessions: 10_000,
        };
        let args = cell.generator_args();
        let has = |pair: [&str; 2]| args.windows(2).any(|w| w == pair);
        assert!(
            has(["--path", "/read"]) && has(["--write-every", "10"]),
            "{args:?}"
        );
        assert!(has(["--write-path", "/hot"]) && has(["--sessions", "10000"]));
        assert!(!args.iter().any(|a| a == "--same" || a == "--counter"));
        assert_eq!(server.store.peers_store(), Store::Redis);
        assert!(server.store.is_shared());
    }

    #[test]
    fn totals_are_read_by_event_name() {
        let text = "version: 1\nevents: Ir Dr Dw I1mr D1mr\nfn=(1) main\n16 3 1 1 2 0\nsummary: 900 40 30 7 2\ntotals: 900 40 30 7 2\n";
        assert_eq!(totals_of(text).unwrap(), (900.0, 7.0));
        // Without the cache simulation there is no I1mr: an error, never a zero.
        let text = "events: Ir\nsummary: 900\n";
        assert!(totals_of(text).is_err());
        assert!(totals_of("events: Ir I1mr\n").is_err());
    }
}
