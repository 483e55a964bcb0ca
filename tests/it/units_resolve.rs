//! Unit resolution against real trees under a temporary `--root`: what systemd would load for
//! docker.service / docker.socket, and what stops when containerd.service is stopped.

use docker_upgrade_guard::root::Root;
use docker_upgrade_guard::units::{self, DepKind, Unit};
use std::os::unix::fs::symlink;
use std::path::Path;

const FOCAL_DOCKER_SERVICE: &str = "\
[Unit]
Description=Docker Application Container Engine
Documentation=https://docs.docker.com
BindsTo=containerd.service
After=network-online.target firewalld.service containerd.service
Wants=network-online.target
Requires=docker.socket

[Service]
Type=notify
ExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock
Restart=always

[Install]
WantedBy=multi-user.target
";

const BOOKWORM_DOCKER_SERVICE: &str = "\
[Unit]
Description=Docker Application Container Engine
Documentation=https://docs.docker.com
After=network-online.target docker.socket firewalld.service containerd.service time-set.target
Wants=network-online.target containerd.service
Requires=docker.socket

[Service]
Type=notify
ExecStart=/usr/sbin/dockerd -H fd:// $DOCKER_OPTS
";

const DOCKER_SOCKET: &str = "\
[Unit]
Description=Docker Socket for the API
PartOf=docker.service

[Socket]
ListenStream=/run/docker.sock
SocketMode=0660

[Install]
WantedBy=sockets.target
";

const CONTAINERD_SERVICE: &str = "\
[Unit]
Description=containerd container runtime
After=network.target local-fs.target

[Service]
ExecStart=/usr/bin/containerd
";

struct Tree {
    _dir: tempfile::TempDir,
    root: Root,
}

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        Tree { _dir: dir, root }
    }
    fn path(&self, abs: &str) -> std::path::PathBuf {
        self.root.path(abs)
    }
    fn write(&self, abs: &str, text: &str) -> &Tree {
        let p = self.path(abs);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }
    fn link(&self, target: &str, abs: &str) -> &Tree {
        let p = self.path(abs);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        symlink(target, p).unwrap();
        self
    }
    fn load(&self, name: &str) -> Unit {
        units::load(&self.root, name)
            .unwrap()
            .unwrap_or_else(|| panic!("{name} not found"))
    }
    fn all(&self) -> Vec<Unit> {
        ["containerd.service", "docker.service", "docker.socket"]
            .iter()
            .filter_map(|n| units::load(&self.root, n).unwrap())
            .collect()
    }
    /// `unit <- chain` for every unit stopped by stopping containerd, with each link of the
    /// chain as `file-relative-to-root:line:text`.
    fn stops(&self) -> Vec<(String, Vec<String>)> {
        let base = self.root.dir().to_path_buf();
        units::stop_propagation(&self.all(), "containerd.service")
            .into_iter()
            .map(|p| {
                let chain = p
                    .chain
                    .iter()
                    .map(|d| {
                        format!(
                            "/{}:{}:{}",
                            d.evidence.file.strip_prefix(&base).unwrap().display(),
                            d.evidence.line,
                            d.evidence.text
                        )
                    })
                    .collect();
                (p.unit, chain)
            })
            .collect()
    }
}

fn focal() -> Tree {
    let t = Tree::new();
    t.write("/lib/systemd/system/docker.service", FOCAL_DOCKER_SERVICE)
        .write("/lib/systemd/system/docker.socket", DOCKER_SOCKET)
        .write("/lib/systemd/system/containerd.service", CONTAINERD_SERVICE);
    t
}

fn bookworm() -> Tree {
    let t = Tree::new();
    // merged /usr, as on bookworm: the files are reached through the /lib symlink too.
    t.write(
        "/usr/lib/systemd/system/docker.service",
        BOOKWORM_DOCKER_SERVICE,
    )
    .write("/usr/lib/systemd/system/docker.socket", DOCKER_SOCKET)
    .write(
        "/usr/lib/systemd/system/containerd.service",
        CONTAINERD_SERVICE,
    )
    .link("usr/lib", "/lib");
    t
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(std::string::ToString::to_string).collect()
}

#[test]
fn focal_shape_stops_docker_and_its_socket() {
    let t = focal();
    assert_eq!(
        t.stops(),
        vec![
            (
                "docker.service".to_string(),
                s(&["/lib/systemd/system/docker.service:4:BindsTo=containerd.service"])
            ),
            (
                "docker.socket".to_string(),
                s(&[
                    "/lib/systemd/system/docker.service:4:BindsTo=containerd.service",
                    "/lib/systemd/system/docker.socket:3:PartOf=docker.service"
                ])
            ),
        ]
    );
    let docker = t.load("docker.service");
    assert!(docker.problems.is_empty(), "{:?}", docker.problems);
    assert!(!docker.masked);
    assert_eq!(
        docker.fragment.as_deref(),
        Some(t.path("/lib/systemd/system/docker.service").as_path())
    );
}

#[test]
fn bookworm_shape_stops_nothing() {
    let t = bookworm();
    assert_eq!(t.stops(), vec![]);
    let docker = t.load("docker.service");
    // Found once (the /lib symlink leads to the same directory; the first hit wins).
    assert!(docker
        .deps
        .iter()
        .any(|d| d.kind == DepKind::Wants && d.target == "containerd.service"));
    assert!(docker.problems.is_empty(), "{:?}", docker.problems);
}

#[test]
fn requires_added_by_a_dropin_in_etc() {
    let t = bookworm();
    t.write(
        "/etc/systemd/system/docker.service.d/override.conf",
        "# local policy\n[Unit]\nRequires=containerd.service\n",
    );
    assert_eq!(
        t.stops(),
        vec![
            (
                "docker.service".to_string(),
                s(&["/etc/systemd/system/docker.service.d/override.conf:3:Requires=containerd.service"])
            ),
            (
                "docker.socket".to_string(),
                s(&[
                    "/etc/systemd/system/docker.service.d/override.conf:3:Requires=containerd.service",
                    "/usr/lib/systemd/system/docker.socket:3:PartOf=docker.service"
                ])
            ),
        ]
    );
}

#[test]
fn an_empty_assignment_does_not_remove_bindsto() {
    // systemd cannot reset dependencies; the admin's attempt is reported, the risk remains.
    let t = focal();
    t.write(
        "/etc/systemd/system/docker.service.d/10-unbind.conf",
        "[Unit]\nBindsTo=\n",
    );
    let docker = t.load("docker.service");
    assert_eq!(docker.dropins.len(), 1);
    assert_eq!(docker.problems.len(), 1, "{:?}", docker.problems);
    let p = &docker.problems[0];
    assert!(
        p.contains("10-unbind.conf:2:") && p.contains("cannot reset"),
        "{p}"
    );
    assert_eq!(t.stops().len(), 2);
}

#[test]
fn an_etc_mask_hides_the_unit() {
    for mask in ["devnull", "empty"] {
        let t = focal();
        match mask {
            "devnull" => {
                t.link("/dev/null", "/etc/systemd/system/docker.service");
            }
            _ => {
                t.write("/etc/systemd/system/docker.service", "");
            }
        }
        // A drop-in of a masked unit is not loaded either.
        t.write(
            "/etc/systemd/system/docker.service.d/x.conf",
            "[Unit]\nRequires=containerd.service\n",
        );
        let docker = t.load("docker.service");
        assert!(docker.masked, "{mask}");
        assert!(docker.deps.is_empty(), "{mask}");
        assert!(docker.dropins.is_empty(), "{mask}");
        assert_eq!(
            docker.fragment.as_deref(),
            Some(t.path("/etc/systemd/system/docker.service").as_path())
        );
        // Masked docker.service cannot be stopped by containerd; the socket's PartOf= still
        // names the service, which was never running: nothing propagates.
        assert_eq!(t.stops(), vec![], "{mask}");
    }
}

#[test]
fn an_alias_symlink_is_followed_inside_the_root_only() {
    let t = Tree::new();
    t.write("/lib/systemd/system/moby.service", FOCAL_DOCKER_SERVICE)
        .write("/lib/systemd/system/docker.socket", DOCKER_SOCKET)
        .write("/lib/systemd/system/containerd.service", CONTAINERD_SERVICE)
        // Absolute link text: resolved relative to the root, not the host.
        .link(
            "/lib/systemd/system/moby.service",
            "/etc/systemd/system/docker.service",
        )
        .write(
            "/etc/systemd/system/moby.service.d/a.conf",
            "[Unit]\nPartOf=containerd.service\n",
        );
    let docker = t.load("docker.service");
    assert_eq!(
        docker.fragment.as_deref(),
        Some(t.path("/lib/systemd/system/moby.service").as_path())
    );
    // The drop-ins of the name the alias points to apply too.
    assert_eq!(docker.dropins.len(), 1);
    assert!(docker.deps.iter().any(|d| d.kind == DepKind::PartOf));
    assert_eq!(
        t.stops()[0].1[0],
        "/lib/systemd/system/moby.service:4:BindsTo=containerd.service"
    );

    // A link that climbs out of the root lands on the root's own files, never the host's.
    let t = Tree::new();
    t.link(
        "../../../../../../../../../../../etc/passwd",
        "/etc/systemd/system/docker.service",
    );
    assert!(units::load(&t.root, "docker.service").unwrap().is_none());
    t.write("/etc/passwd", "root:x:0:0::/root:/bin/sh\n");
    let u = t.load("docker.service");
    assert_eq!(u.fragment.as_deref(), Some(t.path("/etc/passwd").as_path()));
    assert!(
        !u.problems.is_empty(),
        "the passwd line does not parse as a unit line"
    );

    // A loop is a problem, not a hang.
    let t = focal();
    t.link("docker.service", "/etc/systemd/system/docker.service");
    let u = t.load("docker.service");
    assert!(u.problems[0].contains("symbolic links"), "{:?}", u.problems);
    assert_eq!(
        u.fragment.as_deref(),
        Some(t.path("/lib/systemd/system/docker.service").as_path())
    );
}

#[test]
fn dropins_merge_by_name_across_dirs_in_lexical_order() {
    let t = bookworm();
    t.write(
        "/usr/lib/systemd/system/docker.service.d/50-x.conf",
        "[Unit]\nBindsTo=containerd.service\n",
    )
    // Same name in /etc hides the /usr/lib one.
    .write(
        "/etc/systemd/system/docker.service.d/50-x.conf",
        "[Unit]\nWants=foo.service\n",
    )
    .write(
        "/run/systemd/system/docker.service.d/20-a.conf",
        "[Unit]\nWants=a.service\n",
    )
    .write(
        "/usr/lib/systemd/system/docker.service.d/90-z.conf",
        "[Unit]\nWants=z.service\n",
    )
    // A /dev/null drop-in hides the lower one of the same name and adds nothing.
    .write(
        "/usr/lib/systemd/system/docker.service.d/60-bind.conf",
        "[Unit]\nBindsTo=containerd.service\n",
    )
    .link(
        "/dev/null",
        "/etc/systemd/system/docker.service.d/60-bind.conf",
    )
    // Not a .conf: ignored.
    .write(
        "/etc/systemd/system/docker.service.d/70.conf.dpkg-old",
        "[Unit]\nBindsTo=containerd.service\n",
    );
    let docker = t.load("docker.service");
    let rel: Vec<String> = docker
        .dropins
        .iter()
        .map(|p| p.strip_prefix(t.root.dir()).unwrap().display().to_string())
        .collect();
    assert_eq!(
        rel,
        s(&[
            "run/systemd/system/docker.service.d/20-a.conf",
            "etc/systemd/system/docker.service.d/50-x.conf",
            "usr/lib/systemd/system/docker.service.d/90-z.conf",
        ])
    );
    assert_eq!(t.stops(), vec![]);
}

#[test]
fn type_level_dropins_and_requires_dirs() {
    let t = bookworm();
    t.write(
        "/etc/systemd/system/service.d/10-all.conf",
        "[Unit]\nPartOf=containerd.service\n",
    );
    let stops = t.stops();
    assert_eq!(stops[0].0, "docker.service");
    assert_eq!(
        stops[0].1,
        s(&["/etc/systemd/system/service.d/10-all.conf:2:PartOf=containerd.service"])
    );

    let t = bookworm();
    t.link(
        "/usr/lib/systemd/system/containerd.service",
        "/etc/systemd/system/docker.service.requires/containerd.service",
    );
    let stops = t.stops();
    assert_eq!(stops[0].0, "docker.service");
    assert!(stops[0].1[0].contains(":0:docker.service.requires/containerd.service"));

    // A type-level drop-in alone does not make a unit exist.
    assert!(units::load(&t.root, "nothing.service").unwrap().is_none());
}

#[test]
fn garbage_is_reported_and_the_rest_used() {
    let t = Tree::new();
    t.write(
        "/lib/systemd/system/docker.service",
        "[Unit]\nDescription=x\nthis line is garbage\nBindsTo=containerd.service\n[Unit\n",
    )
    .write(
        "/etc/systemd/system/docker.service.d/bad.conf",
        "[Unit]\nRequires=\u{e9}.service\n",
    );
    std::fs::write(
        t.path("/etc/systemd/system/docker.service.d/bin.conf"),
        b"[Unit]\nRequires=a\xff.service\n",
    )
    .unwrap();
    let docker = t.load("docker.service");
    assert_eq!(docker.deps.len(), 1);
    let file = t.path("/lib/systemd/system/docker.service");
    assert!(docker.problems[0].starts_with(&format!("{}:3: missing '='", file.display())));
    assert!(docker.problems[1].starts_with(&format!("{}:5: invalid section", file.display())));
    assert!(
        docker
            .problems
            .iter()
            .any(|p| p.contains("bin.conf") && p.contains("UTF-8")),
        "{:?}",
        docker.problems
    );
    assert!(docker.problems.iter().all(|p| !p.contains('\n')));
}

#[test]
fn missing_units_and_bad_names() {
    let t = Tree::new();
    assert!(units::load(&t.root, "docker.service").unwrap().is_none());
    assert!(units::load(&t.root, "../../etc/passwd").is_err());
    assert!(units::load(&t.root, "docker").is_err());
    assert!(Path::new("/").exists());
}
