//! The test harness itself against the real dpkg: a focal-shaped containerd upgrade, run by
//! real dpkg with no hook, stops docker through BindsTo= in the stand-in and nothing starts it.
//! This is the outage the product exists to prevent; if the harness cannot reproduce it, the
//! hook tests prove nothing.
use crate::support::{ok, shapes, TestRoot};

#[test]
fn harness_reproduces_the_focal_outage_without_the_tool() {
    let t = TestRoot::new();
    t.set_units(&shapes::focal_units());
    let debs = t.path().join("debs");
    let v1 = shapes::containerd_deb("1.3.3-0ubuntu2").build(&debs);
    let v2 = shapes::containerd_deb("1.3.3-0ubuntu2.1").build(&debs);
    ok(&t.dpkg(&["-i", v1.to_str().unwrap()], false));
    assert!(t.is_active("docker.service"));
    t.clear_calls();
    ok(&t.dpkg(&["-i", v2.to_str().unwrap()], false));
    let calls = t.calls();
    assert!(
        calls.contains("stopped docker.service (BindsTo=containerd.service)"),
        "{calls}"
    );
    assert!(
        calls.contains("stopped docker.socket (PartOf=docker.service)"),
        "{calls}"
    );
    assert!(
        t.is_active("containerd.service"),
        "postinst started containerd again"
    );
    assert!(
        !t.is_active("docker.service"),
        "nothing started docker again: the outage"
    );
    let log = std::fs::read_to_string(t.path().join("var/log/dpkg.log")).unwrap();
    assert!(
        log.contains("upgrade containerd:all 1.3.3-0ubuntu2 1.3.3-0ubuntu2.1"),
        "{log}"
    );
}
