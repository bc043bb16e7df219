//! `load-gen`: a small HTTP/1.1 load generator for the load benchmarks (see
//! `benches/load/README.md`).
//!
//! It opens N keep-alive connections to one address on a current-thread Tokio runtime (one
//! core), each a client with its own cookie jar: it sends `Cookie`, takes `Set-Cookie` back,
//! and has one request in flight. Requests and responses are written and parsed by hand
//! (`httparse` for the head, `Content-Length` bodies only), so the generator spends little
//! CPU of its own. After a warm-up it measures for a fixed time: completed requests, latency
//! percentiles and, with `--server-pid`, the server's CPU time over exactly that window (from
//! `/proc/PID/task/*/schedstat`, nanoseconds), and with `--store-pid` the same for the
//! session store's server (Redis), which no other column counts. Every response must be `200`; with `--counter`
//! the body must be a number one more than the connection's previous one, which shows that
//! the session's read-modify-write round-tripped through the cookie.
//!
//! The last line on stdout is `RESULT key=value ...` for the driver (`load-bench`).

use std::error::Error as StdError;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

type BoxError = Box<dyn StdError + Send + Sync>;

const USAGE: &str = "\
usage: load-gen --addr HOST:PORT[,HOST:PORT...] [options]
  --addr LIST        the server, or several (app servers sharing a store): connection i
                     goes to the (i mod n)th
  --connections N    keep-alive connections, one request in flight each (default 32)
  --warmup SECS      warm-up before the measured window (default 1)
  --duration SECS    measured window (default 5)
  --rate R           total requests per second, paced per connection (default: as fast as
                     possible); pacing uses Tokio's timer (1 ms ticks), so sends are grouped
                     per millisecond
  --server-pid PIDS  measure these processes' CPU time over the window (comma-separated,
                     summed: one per address)
  --store-pid PID    measure this one's too (the store's server, e.g. redis-server)
  --store-process N  the same for every process named N (e.g. postgres, a process per
                     connection)
  --counter          check that each body is the previous one plus one, per connection
  --max-requests N   stop after N requests in total (default: no limit)
  --no-cookie        send no Cookie header at all (default: a realistic one, see below)
  --spin             never sleep: poll the sockets in a loop (burns this CPU), so that the
                     server's answers never have to wake the generator up
  --path PATH        request target (default /)
  --sessions N       client sessions (cookie jars, default: one per connection); with more
                     than connections, each connection takes its own in turn, with fewer,
                     connections share them (and their counters are not checked)
  --prime PATH       before the run, send each session's first request to PATH (not
                     measured), so that it exists; its answer starts --counter and --same
  --same             check that each body is the number the session's previous one was
  --write-every N    every Nth request of a connection goes to --write-path instead of
                     --path (a mix: --path /read --write-every 10 is 90% reads); checks no
                     counter
  --write-path PATH  the target of those requests (default /hot)

Each connection starts with `Cookie: _ga=...; theme=dark; id=<140 characters>` (a small
sealed session) and replaces or adds every cookie a response sets.";

/// Options from the command line.
#[derive(Debug, Clone)]
struct Options {
    addr: String,
    /// Every address of `--addr`.
    addrs: Vec<String>,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    rate: Option<f64>,
    server_pids: Vec<u32>,
    store_pid: Option<u32>,
    store_process: Option<String>,
    counter: bool,
    max_requests: u64,
    cookie: bool,
    spin: bool,
    path: String,
    sessions: usize,
    prime: Option<String>,
    same: bool,
    write_every: usize,
    write_path: String,
}

fn parse_options() -> Result<Options, BoxError> {
    let mut options = Options {
        addr: String::new(),
        addrs: Vec::new(),
        connections: 32,
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs(5),
        rate: None,
        server_pids: Vec::new(),
        store_pid: None,
        store_process: None,
        counter: false,
        max_requests: u64::MAX,
        cookie: true,
        spin: false,
        path: "/".to_owned(),
        sessions: 0,
        prime: None,
        same: false,
        write_every: 0,
        write_path: "/hot".to_owned(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--addr" => options.addr = value()?,
            "--connections" => options.connections = value()?.parse()?,
            "--warmup" => options.warmup = Duration::try_from_secs_f64(value()?.parse()?)?,
            "--duration" => options.duration = Duration::try_from_secs_f64(value()?.parse()?)?,
            "--rate" => options.rate = Some(value()?.parse()?),
            "--server-pid" => {
                options.server_pids = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?;
            }
            "--write-every" => options.write_every = value()?.parse()?,
            "--write-path" => options.write_path = value()?,
            "--store-pid" => options.store_pid = Some(value()?.parse()?),
            "--store-process" => options.store_process = Some(value()?),
            "--counter" => options.counter = true,
            "--max-requests" => options.max_requests = value()?.parse()?,
            "--no-cookie" => options.cookie = false,
            "--spin" => options.spin = true,
            "--path" => options.path = value()?,
            "--sessions" => options.sessions = value()?.parse()?,
            "--prime" => options.prime = Some(value()?),
            "--same" => options.same = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    if options.addr.is_empty() {
        return Err(format!("--addr is required\n{USAGE}").into());
    }
    if options.connections == 0 || options.connections > 10_000 {
        return Err("--connections must be 1 to 10000".into());
    }
    if options.sessions == 0 {
        options.sessions = options.connections;
    }
    if options.sessions > 1_000_000 {
        return Err("--sessions must be at most 1000000".into());
    }
    options.addrs = options.addr.split(',').map(str::to_owned).collect();
    // The `Host` every request names.
    options.addr = options.addrs[0].clone();
    if options.write_every > 0 && (options.counter || options.same) {
        return Err("--write-every excludes --counter and --same".into());
    }
    if options.counter && options.same {
        return Err("--counter and --same exclude each other".into());
    }
    if options.duration.is_zero() {
        return Err("--duration must be positive".into());
    }
    if let Some(rate) = options.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err("--rate must be a positive number".into());
    }
    Ok(options)
}

/// CPU time of a process, summed over its threads.
#[derive(Debug, Clone, Copy, Default)]
struct CpuTime {
    /// Time on a CPU in nanoseconds, from `schedstat` (user and system).
    ns: u64,
    /// User and system time in clock ticks, from `stat` (coarser; for the split).
    utime_ticks: u64,
    stime_ticks: u64,
}

/// Reads the CPU time of `pid` ("self" for this process).
fn cpu_time(pid: &str) -> Result<CpuTime, BoxError> {
    let mut total = CpuTime::default();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let task = task?.path();
        let schedstat = std::fs::read_to_string(task.join("schedstat"))?;
        let ns = schedstat
            .split_ascii_whitespace()
            .next()
            .ok_or("empty schedstat")?;
        total.ns += ns.parse::<u64>()?;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces; fields after its ')' are fixed.
    let after = stat.rsplit_once(')').ok_or("malformed stat")?.1;
    let fields: Vec<&str> = after.split_ascii_whitespace().collect();
    // `after` starts at field 3 (state); utime and stime are fields 14 and 15.
    total.utime_ticks = fields.get(11).ok_or("short stat")?.parse()?;
    total.stime_ticks = fields.get(12).ok_or("short stat")?.parse()?;
    Ok(total)
}

/// The CPU time of every process called `name` (a PostgreSQL server is one process per
/// connection), summed; processes that end between listing and reading are left out.
fn processes_cpu_time(name: &str) -> Result<CpuTime, BoxError> {
    let mut total = CpuTime::default();
    for entry in std::fs::read_dir("/proc")? {
        let file_name = entry?.file_name();
        let Some(pid) = file_name
            .to_str()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        if let Ok(cpu) = cpu_time(pid) {
            total.ns += cpu.ns;
            total.utime_ticks += cpu.utime_ticks;
            total.stime_ticks += cpu.stime_ticks;
        }
    }
    Ok(total)
}

/// What one connection measured.
#[derive(Debug, Default)]
struct ConnStats {
    /// Per completed request: completion time in microseconds since the start, and latency
    /// in nanoseconds (saturating).
    samples: Vec<(u32, u32)>,
    counter_errors: u64,
    error: Option<String>,
}

/// A cookie jar of one client: names and values in the order first seen.
#[derive(Debug, Clone)]
struct Jar {
    cookies: Vec<(String, String)>,
}

impl Jar {
    fn header_value(&self) -> String {
        let mut value = String::new();
        for (name, v) in &self.cookies {
            if !value.is_empty() {
                value.push_str("; ");
            }
            value.push_str(name);
            value.push('=');
            value.push_str(v);
        }
        value
    }

    /// Applies one `Set-Cookie` value; tells whether the jar changed.
    fn set(&mut self, set_cookie: &[u8]) -> bool {
        let pair = set_cookie.split(|&b| b == b';').next().unwrap_or_default();
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            return false;
        };
        let name = String::from_utf8_lossy(&pair[..eq]).trim().to_owned();
        let value = String::from_utf8_lossy(&pair[eq + 1..]).trim().to_owned();
        // A `Max-Age=0` removal is not expected from these servers; it would be applied as a
        // value, which is harmless here.
        match self.cookies.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) if *v == value => false,
            Some((_, v)) => {
                *v = value;
                true
            }
            None => {
                self.cookies.push((name, value));
                true
            }
        }
    }
}

/// The request bytes for the current jar.
fn build_request(buf: &mut Vec<u8>, path: &str, host: &str, jar: Option<&Jar>) {
    buf.clear();
    buf.extend_from_slice(b"GET ");
    buf.extend_from_slice(path.as_bytes());
    buf.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    buf.extend_from_slice(host.as_bytes());
    buf.extend_from_slice(b"\r\nUser-Agent: load-gen\r\nAccept: */*\r\n");
    if let Some(jar) = jar
        && !jar.cookies.is_empty()
    {
        buf.extend_from_slice(b"Cookie: ");
        buf.extend_from_slice(jar.header_value().as_bytes());
        buf.extend_from_slice(b"\r\n");
    }
    buf.extend_from_slice(b"\r\n");
}

/// The fixed part of the plan shared by every connection.
#[derive(Debug)]
struct Plan {
    options: Options,
    start: Instant,
    end: Instant,
    issued: AtomicU64,
    /// Connections still running.
    active: AtomicU64,
}

/// One client session: its cookies, the request that carries them, and the last number its
/// responses gave (for `--counter` and `--same`).
#[derive(Debug, Clone)]
struct Client {
    jar: Option<Jar>,
    request: Vec<u8>,
    /// The request to `--write-path` (empty without `--write-every`).
    write_request: Vec<u8>,
    previous: Option<u64>,
}

impl Client {
    fn new(index: usize, options: &Options) -> Self {
        let jar = options.cookie.then(|| Jar {
            cookies: vec![
                ("_ga".to_owned(), "GA1.1.1234567890.1732492800".to_owned()),
                ("theme".to_owned(), "dark".to_owned()),
                ("id".to_owned(), fake_session_cookie(index)),
            ],
        });
        let mut client = Client {
            jar,
            request: Vec::with_capacity(512),
            write_request: Vec::new(),
            previous: None,
        };
        client.build(options);
        client
    }

    /// (Re)builds the client's requests from its jar.
    fn build(&mut self, options: &Options) {
        build_request(
            &mut self.request,
            &options.path,
            &options.addr,
            self.jar.as_ref(),
        );
        if options.write_every > 0 {
            build_request(
                &mut self.write_request,
                &options.write_path,
                &options.addr,
                self.jar.as_ref(),
            );
        }
    }
}

/// A connection with its sessions, after priming: it sends each next request from the next
/// of its clients in turn.
struct Connection {
    stream: TcpStream,
    clients: Vec<Client>,
    buf: Vec<u8>,
}

impl Connection {
    /// Opens the `index`th connection, to its address.
    async fn open(options: &Options, index: usize) -> Result<Self, BoxError> {
        let stream = TcpStream::connect(&options.addrs[index % options.addrs.len()]).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            clients: Vec::new(),
            buf: vec![0_u8; 64 * 1024],
        })
    }

    /// Sends `request` and reads the answer: its status and the number in its body, if
    /// any. `Set-Cookie` goes into `jar`; the returned flag tells whether it changed.
    async fn exchange(
        &mut self,
        request: &[u8],
        mut jar: Option<&mut Jar>,
    ) -> Result<(u16, Option<u64>, bool), BoxError> {
        let (stream, buf) = (&mut self.stream, &mut self.buf);
        stream.write_all(request).await?;
        let mut filled = 0;
        let (head_len, body_len, status, changed) = loop {
            if filled == buf.len() {
                return Err("response head larger than 64 KiB".into());
            }
            let n = stream.read(&mut buf[filled..]).await?;
            if n == 0 {
                return Err("server closed the connection".into());
            }
            filled += n;
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&buf[..filled])? {
                httparse::Status::Partial => continue,
                httparse::Status::Complete(head_len) => {
                    let status = response.code.unwrap_or(0);
                    let mut body_len = None;
                    let mut changed = false;
                    for header in response.headers.iter() {
                        if header.name.eq_ignore_ascii_case("content-length") {
                            body_len = Some(std::str::from_utf8(header.value)?.trim().parse()?);
                        } else if header.name.eq_ignore_ascii_case("set-cookie") {
                            if let Some(jar) = jar.as_deref_mut() {
                                changed |= jar.set(header.value);
                            }
                        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                            return Err("chunked responses are not supported".into());
                        } else if header.name.eq_ignore_ascii_case("connection")
                            && header.value.eq_ignore_ascii_case(b"close")
                        {
                            return Err("server asked to close the connection".into());
                        }
                    }
                    let body_len: usize = body_len.ok_or("response without Content-Length")?;
                    break (head_len, body_len, status, changed);
                }
            }
        };
        let total = head_len + body_len;
        if total > buf.len() {
            return Err("response larger than 64 KiB".into());
        }
        while filled < total {
            let n = stream.read(&mut buf[filled..]).await?;
            if n == 0 {
                return Err("server closed the connection in a body".into());
            }
            filled += n;
        }
        if filled > total {
            return Err("bytes after the response (the server answered twice?)".into());
        }
        let number = std::str::from_utf8(&buf[head_len..total])
            .ok()
            .and_then(|s| s.parse().ok());
        Ok((status, number, changed))
    }

    /// Sends each client's first request to `path` (`--prime`), so that its session exists
    /// before the run; the number it answers is where `--counter` and `--same` start.
    async fn prime(&mut self, path: &str, options: &Options) -> Result<(), BoxError> {
        let mut clients = std::mem::take(&mut self.clients);
        let mut request = Vec::with_capacity(512);
        for client in &mut clients {
            build_request(&mut request, path, &options.addr, client.jar.as_ref());
            let (status, number, _) = self.exchange(&request, client.jar.as_mut()).await?;
            if status != 200 {
                return Err(format!("priming {path}: status {status}").into());
            }
            client.previous = number;
            client.build(options);
        }
        self.clients = clients;
        Ok(())
    }
}

/// One connection: sends requests until the end of the run, one in flight.
async fn connection(index: usize, connection: Connection, plan: Arc<Plan>) -> ConnStats {
    let mut stats = ConnStats::default();
    if let Err(error) = run_connection(index, connection, &plan, &mut stats).await {
        stats.error = Some(error.to_string());
    }
    plan.active.fetch_sub(1, Ordering::Relaxed);
    stats
}

async fn run_connection(
    index: usize,
    mut connection: Connection,
    plan: &Plan,
    stats: &mut ConnStats,
) -> Result<(), BoxError> {
    let options = &plan.options;
    let expected = (plan.options.duration + plan.options.warmup).as_secs_f64()
        * plan.options.rate.unwrap_or(200_000.0)
        / plan.options.connections as f64;
    #[allow(clippy::cast_possible_truncation)] // a capacity hint, at most 4 million
    stats.samples.reserve(expected.min(4e6) as usize);
    // Sessions shared between connections (`--sessions` below `--connections`) see each
    // other's writes: their counter is not checked.
    let check = (options.counter || options.same) && options.sessions >= options.connections;
    // Pacing: this connection's share of the rate, offset so connections interleave.
    let pace = options.rate.map(|rate| {
        let interval = Duration::from_secs_f64(options.connections as f64 / rate);
        let first = plan.start + Duration::from_secs_f64(index as f64 / rate);
        (interval, first)
    });
    let mut clients = std::mem::take(&mut connection.clients);
    let mut k: u32 = 0;
    for turn in 0.. {
        let mut now = Instant::now();
        if now >= plan.end {
            return Ok(());
        }
        if let Some((interval, first)) = pace {
            let due = first + interval * k;
            k += 1;
            if due >= plan.end {
                return Ok(());
            }
            if due > now {
                tokio::time::sleep_until(due).await;
                now = Instant::now();
            }
        }
        if plan.issued.fetch_add(1, Ordering::Relaxed) >= options.max_requests {
            return Ok(());
        }
        let next = turn % clients.len();
        let client = &mut clients[next];
        let writes =
            options.write_every > 0 && turn % options.write_every == options.write_every - 1;
        let request = if writes {
            &client.write_request
        } else {
            &client.request
        };
        let (status, number, changed) = connection.exchange(request, client.jar.as_mut()).await?;
        let done = Instant::now();
        if status != 200 {
            return Err(format!("status {status}").into());
        }
        if changed {
            client.build(options);
        }
        if options.counter || options.same {
            let step = u64::from(options.counter);
            match (client.previous, number) {
                (_, None) => stats.counter_errors += 1,
                (Some(p), Some(n)) if check && n != p + step => stats.counter_errors += 1,
                _ => {}
            }
            client.previous = number;
        }
        let at = u32::try_from(done.duration_since(plan.start).as_micros()).unwrap_or(u32::MAX);
        let latency = u32::try_from(done.duration_since(now).as_nanos()).unwrap_or(u32::MAX);
        stats.samples.push((at, latency));
    }
    Ok(())
}

/// A cookie value of the length of a small sealed session (140 characters of base64url),
/// different per connection.
fn fake_session_cookie(index: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ (index as u64);
    (0..140)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(ALPHABET[(state % 64) as usize])
        })
        .collect()
}

/// The window's measurements of the server (or this process).
#[derive(Debug, Default)]
struct Window {
    /// Microseconds since the start at which the window opened and closed.
    from_us: u32,
    to_us: u32,
    server: Option<(CpuTime, CpuTime)>,
    store: Option<(CpuTime, CpuTime)>,
    generator: (CpuTime, CpuTime),
    machine: (u64, u64),
}

/// One reading of the clock and the CPU times: (µs, server, store, generator, the whole
/// machine's busy time in clock ticks).
type Reading = (u32, Option<CpuTime>, Option<CpuTime>, CpuTime, u64);

fn read_cpu(plan: &Plan) -> Result<Reading, BoxError> {
    let read = |pid: Option<u32>| pid.map(|pid| cpu_time(&pid.to_string())).transpose();
    let mut server: Option<CpuTime> = None;
    for &pid in &plan.options.server_pids {
        let cpu = cpu_time(&pid.to_string())?;
        let total = server.get_or_insert_default();
        total.ns += cpu.ns;
        total.utime_ticks += cpu.utime_ticks;
        total.stime_ticks += cpu.stime_ticks;
    }
    let store = match &plan.options.store_process {
        Some(name) => Some(processes_cpu_time(name)?),
        None => read(plan.options.store_pid)?,
    };
    let generator = cpu_time("self")?;
    let machine = machine_busy_ticks()?;
    let us = u32::try_from(Instant::now().duration_since(plan.start).as_micros())?;
    Ok((us, server, store, generator, machine))
}

/// Time all CPUs spent busy (user, nice, system, irq, softirq), in clock ticks, from the
/// first line of `/proc/stat`: what is left after the measured processes is everyone else's.
fn machine_busy_ticks() -> Result<u64, BoxError> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().ok_or("empty /proc/stat")?;
    let ticks: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    // user nice system idle iowait irq softirq ...
    Ok([0, 1, 2, 5, 6].iter().filter_map(|&i| ticks.get(i)).sum())
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[allow(clippy::cast_possible_truncation)] // at most the index of the last element
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
}

/// Opens the connections, hands out the sessions (`--sessions`: each of its own when there
/// are at least as many as connections, else shared round the connections) and primes them.
async fn open_connections(options: &Options) -> Result<Vec<Connection>, BoxError> {
    let options = Arc::new(options.clone());
    let (count, sessions) = (options.connections, options.sessions);
    let mut opened = Vec::with_capacity(count);
    for index in 0..count {
        opened.push(Connection::open(&options, index).await?);
    }
    for j in 0..sessions {
        opened[j % count].clients.push(Client::new(j, &options));
    }
    if let Some(path) = options.prime.clone() {
        let tasks: Vec<_> = opened
            .into_iter()
            .map(|mut connection| {
                let (options, path) = (options.clone(), path.clone());
                tokio::spawn(async move {
                    connection.prime(&path, &options).await?;
                    Ok::<_, BoxError>(connection)
                })
            })
            .collect();
        opened = Vec::with_capacity(count);
        for task in tasks {
            opened.push(task.await??);
        }
    }
    for i in sessions..count {
        let shared = opened[i % sessions].clients.clone();
        opened[i].clients = shared;
    }
    Ok(opened)
}

fn main() -> Result<(), BoxError> {
    let options = parse_options()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let deadline = options.warmup + options.duration + Duration::from_secs(10);
    let connections = options.connections;
    // Priming is bounded too: a server that does not answer ends the run here.
    let opened = runtime
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(60), open_connections(&options)).await
        })
        .map_err(|_| "opening and priming the connections took more than 60 s")??;
    let run = async move {
        let start = Instant::now();
        let plan = Arc::new(Plan {
            end: start + options.warmup + options.duration,
            start,
            issued: AtomicU64::new(0),
            active: AtomicU64::new(connections as u64),
            options,
        });
        let tasks: Vec<_> = opened
            .into_iter()
            .enumerate()
            .map(|(i, opened)| tokio::spawn(connection(i, opened, plan.clone())))
            .collect();
        if plan.options.spin {
            // Always runnable: the runtime polls its sockets without blocking instead of
            // sleeping in epoll_wait.
            let plan = plan.clone();
            tokio::spawn(async move {
                while plan.active.load(Ordering::Relaxed) > 0 {
                    tokio::task::yield_now().await;
                }
            });
        }
        // The window opens at the end of the warm-up and closes when the last connection
        // has finished (its last request, sent before the end, answered).
        let opening = {
            let plan = plan.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(plan.start + plan.options.warmup).await;
                read_cpu(&plan)
            })
        };
        let mut stats = Vec::with_capacity(tasks.len());
        for task in tasks {
            stats.push(task.await?);
        }
        let closing = read_cpu(&plan)?;
        if !opening.is_finished() {
            opening.abort();
            return Err(
                "every connection stopped (--max-requests?) before the warm-up ended".into(),
            );
        }
        let opening = opening.await??;
        let window = Window {
            from_us: opening.0,
            to_us: closing.0,
            server: opening.1.zip(closing.1),
            store: opening.2.zip(closing.2),
            generator: (opening.3, closing.3),
            machine: (opening.4, closing.4),
        };
        Ok::<_, BoxError>((stats, window))
    };
    // A connection that hangs (a server that stops answering) ends the run here.
    let (stats, window) = runtime
        .block_on(async { tokio::time::timeout(deadline, run).await })
        .map_err(|_| "the run did not finish 10 s after its end: a connection hung")??;
    drop(runtime);

    let errors: Vec<&String> = stats.iter().filter_map(|s| s.error.as_ref()).collect();
    let counter_errors: u64 = stats.iter().map(|s| s.counter_errors).sum();
    let mut latencies: Vec<u32> = stats
        .iter()
        .flat_map(|s| s.samples.iter())
        .filter(|(at, _)| (window.from_us..=window.to_us).contains(at))
        .map(|&(_, latency)| latency)
        .collect();
    let all: usize = stats.iter().map(|s| s.samples.len()).sum();
    latencies.sort_unstable();
    let requests = latencies.len();
    let seconds = f64::from(window.to_us - window.from_us) / 1e6;
    let rps = requests as f64 / seconds;
    let (p50, p99, max) = (
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 100.0),
    );
    let tick_ns = 1e9 / 100.0; // USER_HZ, 100 on Linux
    let per_request = |from: CpuTime, to: CpuTime| {
        let ns = (to.ns - from.ns) as f64;
        let user = (to.utime_ticks - from.utime_ticks) as f64 * tick_ns;
        let system = (to.stime_ticks - from.stime_ticks) as f64 * tick_ns;
        (
            ns / requests as f64 / 1000.0,
            ns / (seconds * 1e9),
            user / (user + system).max(1.0),
        )
    };
    let (gen_us, gen_util, _) = per_request(window.generator.0, window.generator.1);

    println!(
        "{requests} requests in {seconds:.3} s over {connections} connections: {rps:.0} req/s; latency p50 {p50:.1} µs, p99 {p99:.1} µs, max {max:.1} µs"
    );
    println!(
        "load generator: {gen_us:.2} µs CPU per request, {:.0}% of a core",
        gen_util * 100.0
    );
    let mut result = format!(
        "RESULT requests={requests} seconds={seconds:.6} rps={rps:.1} p50_us={p50:.2} p99_us={p99:.2} max_us={max:.2} gen_cpu_us={gen_us:.4} gen_util={gen_util:.4} errors={} counter_errors={counter_errors} all_requests={all}",
        errors.len()
    );
    if let Some((from, to)) = window.server {
        let (us, util, user_share) = per_request(from, to);
        println!(
            "server: {us:.2} µs CPU per request ({:.0}% user), {:.0}% of a core",
            user_share * 100.0,
            util * 100.0
        );
        result.push_str(&format!(
            " server_cpu_us={us:.4} server_util={util:.4} server_user_share={user_share:.4}"
        ));
    }
    if let Some((from, to)) = window.store {
        let (us, util, user_share) = per_request(from, to);
        println!(
            "store: {us:.2} µs CPU per request ({:.0}% user), {:.0}% of a core",
            user_share * 100.0,
            util * 100.0
        );
        result.push_str(&format!(" store_cpu_us={us:.4} store_util={util:.4}"));
    }
    // CPUs busy with anything but the measured processes (the server, its store's server,
    // this generator), on average over the window: other work disturbing the slice.
    let measured_ns = [Some(window.generator), window.server, window.store]
        .into_iter()
        .flatten()
        .map(|(from, to)| (to.ns - from.ns) as f64)
        .sum::<f64>();
    let machine_ns = (window.machine.1 - window.machine.0) as f64 * tick_ns;
    let others = ((machine_ns - measured_ns) / (seconds * 1e9)).max(0.0);
    result.push_str(&format!(" others_cpus={others:.4}"));
    for error in errors.iter().take(5) {
        eprintln!("load-gen: connection failed: {error}");
    }
    if counter_errors > 0 {
        eprintln!("load-gen: {counter_errors} responses did not continue their counter");
    }
    println!("{result}");
    if errors.is_empty() && counter_errors == 0 && requests > 0 {
        Ok(())
    } else {
        std::process::exit(1);
    }
}
