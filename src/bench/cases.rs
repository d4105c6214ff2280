//! The benchmark scenarios: a fixed provider-edge plan with one QinQ circuit
//! (S-tag 100; private peering C-tag 200, Microsoft peering C-tag 300 with
//! the `expressroute` DSCP policy) and the frames each case sends through it.
//!
//! The same builders serve `xconnect bench` and the criterion benches, so
//! both measure the same work.

use crate::config::{
    Access, Backbone, BackendKind, Bfd, Bgp, Circuit, Config, Encapsulation, Link, LinkSubnets,
    MplsAccess, Neighbor, Peering, PeeringKind, Port, Role, ServiceMode, TtlModel,
};
use crate::frame::PortId;
use crate::gen::Payload;
use crate::gen::{FrameSpec, IMIX};
use crate::lpm::gen as tables;
use crate::pipeline::{LinkState, Pipeline};
use crate::plan::{Plan, Side};
use crate::qos::{DscpAction, DscpPolicy};
use crate::wire::ethernet::Mac;
use crate::wire::mpls::{Label, ETHERTYPE_MPLS};
use crate::wire::{Tpid, VlanId, VlanTag};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// Port ids of the bench plan.
pub mod port {
    /// Access port of the private peering (untagged).
    pub const PRIVATE: u16 = 0;
    /// Access port of the Microsoft peering (untagged).
    pub const MICROSOFT: u16 = 1;
    /// Primary trunk.
    pub const TRUNK_A: u16 = 2;
    /// Secondary trunk.
    pub const TRUNK_B: u16 = 3;
}

/// S-tag of the bench circuit.
pub const S_TAG: u16 = 100;
/// C-tag of the bench Microsoft peering.
pub const C_TAG_MICROSOFT: u16 = 300;

fn vid(v: u16) -> VlanId {
    // The bench constants are all in 1..=4094.
    VlanId::new(v).unwrap_or(VlanId::new(1).expect("1 is a valid VLAN id"))
}

/// The bench configuration (see the module header).
pub fn config() -> Config {
    let mk_port = |name: &str| Port {
        name: name.to_string(),
        interface: name.to_string(),
        backend: BackendKind::Mem,
        direct_gbps: None,
        backbone: None,
    };
    let peering = |kind, tag, port: usize, dscp| Peering {
        kind,
        tag: vid(tag),
        mode: ServiceMode::L2,
        access: Access {
            port,
            vlans: vec![],
            ipv4: None,
            ipv6: None,
            mpls: None,
        },
        ipv4: None,
        ipv6: None,
        peer_asn: None,
        mtu: 1500,
        dscp: DscpPolicy::plain(dscp),
        dscp_return: DscpPolicy::default(),
        pcp_from_dscp: false,
        routes: vec![],
        neighbors: vec![],
        bfd: Bfd::default(),
        bgp: Bgp::default(),
        host: None,
        fpm: None,
        kernel: None,
    };
    let mut private = peering(PeeringKind::Private, 200, 0, DscpAction::Preserve);
    private.ipv4 = Some(LinkSubnets {
        primary: "192.0.2.0/30".parse().expect("literal"),
        secondary: "192.0.2.4/30".parse().expect("literal"),
    });
    Config {
        source: "bench".into(),
        role: Role::ProviderEdge,
        ports: vec![
            mk_port("private"),
            mk_port("microsoft"),
            mk_port("trunk-a"),
            mk_port("trunk-b"),
        ],
        circuits: vec![Circuit {
            name: "bench".into(),
            encapsulation: Encapsulation::QinQ,
            s_tag: Some(vid(S_TAG)),
            outer_tpid: Tpid::DOT1Q,
            primary: Link {
                port: 2,
                outer_tag: None,
            },
            secondary: Link {
                port: 3,
                outer_tag: None,
            },
            bandwidth_mbps: 10_000,
            premium: false,
            peerings: vec![
                private,
                peering(
                    PeeringKind::Microsoft,
                    C_TAG_MICROSOFT,
                    1,
                    DscpAction::ExpressRoute,
                ),
            ],
        }],
    }
}

/// A pipeline over the bench plan with every port up.
pub fn pipeline() -> Pipeline {
    let plan = Arc::new(crate::config::compile(&config()));
    let links = LinkState::new(plan.ports.len());
    Pipeline::new(plan, links)
}

/// Frame sizes of a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sizes {
    /// Every frame this many wire bytes (FCS included).
    Fixed(usize),
    /// The 7:4:1 IMIX of 64, 576 and 1500 bytes.
    Imix,
}

impl Sizes {
    /// The wire sizes cycled through.
    pub fn list(self) -> Vec<usize> {
        match self {
            Sizes::Fixed(n) => vec![n],
            Sizes::Imix => IMIX.to_vec(),
        }
    }

    /// Average wire bytes per frame.
    pub fn mean(self) -> f64 {
        let l = self.list();
        l.iter().sum::<usize>() as f64 / l.len() as f64
    }

    /// Label for reports.
    pub fn label(self) -> String {
        match self {
            Sizes::Fixed(n) => n.to_string(),
            Sizes::Imix => "imix".into(),
        }
    }
}

/// DSCP values cycled through the bench flows (some kept, some rewritten by
/// the `expressroute` policy).
pub const DSCP_MIX: [u8; 8] = [0, 10, 18, 26, 34, 46, 8, 40];

/// Number of distinct flows in a bench frame set.
pub const FLOWS: usize = 1024;

/// Frames of `FLOWS` flows with the given tags and sizes.
pub fn frames(tags: &[VlanTag], sizes: Sizes) -> Vec<Vec<u8>> {
    let sizes = sizes.list();
    (0..FLOWS)
        .map(|i| {
            let src = IpAddr::V4(Ipv4Addr::new(192, 0, 2, (i % 250) as u8 + 1));
            let dst = IpAddr::V4(Ipv4Addr::new(198, 51, 100, (i / 250) as u8 + 1));
            let tos = DSCP_MIX[i % DSCP_MIX.len()] << 2;
            let len = sizes[i % sizes.len()];
            FrameSpec::udp(tags, src, dst, (40000 + i as u16, 443), tos, len).build()
        })
        .collect()
}

/// Customer frames (untagged, Microsoft peering access port): the push case.
pub fn push_frames(sizes: Sizes) -> Vec<Vec<u8>> {
    frames(&[], sizes)
}

/// Trunk frames (S-tag 100, C-tag 300): the pop case.
pub fn pop_frames(sizes: Sizes) -> Vec<Vec<u8>> {
    frames(
        &[
            VlanTag::from_tci(Tpid::DOT1Q, S_TAG),
            VlanTag::from_tci(Tpid::DOT1Q, C_TAG_MICROSOFT),
        ],
        sizes,
    )
}

/// Ingress port of the push case.
pub const PUSH_PORT: PortId = port::MICROSOFT;
/// Ingress port of the pop case.
pub const POP_PORT: PortId = port::TRUNK_A;

/// The l3 bench plan: one QinQ circuit (S-tag 100, C-tag 200), its private
/// peering in `l3` mode with the `expressroute` DSCP policy, an untagged
/// access link (203.0.113.1/30, 2001:db8:ff::1/126), static neighbours for
/// both MSEEs. Ports: 0 access, 1 unused, 2 and 3 the trunks.
pub fn l3_config() -> Config {
    let mut cfg = config();
    let c = &mut cfg.circuits[0];
    c.peerings.truncate(1);
    let p = &mut c.peerings[0];
    p.mode = ServiceMode::L3;
    p.dscp = DscpPolicy::plain(DscpAction::ExpressRoute);
    p.ipv6 = Some(LinkSubnets {
        primary: "2001:db8:0:1::/126".parse().expect("literal"),
        secondary: "2001:db8:0:1::4/126".parse().expect("literal"),
    });
    p.access.ipv4 = Some("203.0.113.1/30".parse().expect("literal"));
    p.access.ipv6 = Some("2001:db8:ff::1/126".parse().expect("literal"));
    p.neighbors = [
        "192.0.2.2",
        "192.0.2.6",
        "2001:db8:0:1::2",
        "2001:db8:0:1::6",
    ]
    .iter()
    .enumerate()
    .map(|(i, ip)| Neighbor {
        ip: ip.parse().expect("literal"),
        mac: [0x02, 0, 0, 0, 0, 0xa0 + i as u8],
    })
    .collect();
    cfg
}

/// Our MAC on the l3 bench peering's access link: where its access-side
/// frames are addressed (an l3 attachment drops other unicast MACs).
pub fn l3_access_mac(plan: &Plan) -> crate::wire::ethernet::Mac {
    plan.l3
        .first()
        .and_then(|p| p.link(Side::Access))
        .map_or([0xff; 6], |a| a.mac)
}

/// The l3 bench plan and the prefixes of its IPv4 and IPv6 tables.
pub type L3Tables = (
    Arc<Plan>,
    Vec<(ipnet::Ipv4Net, u32)>,
    Vec<(ipnet::Ipv6Net, u32)>,
);

/// The l3 bench plan with `v4` IPv4 and `v6` IPv6 routes (realistic length
/// mixes from [`crate::lpm::gen`]), every one ECMP over both trunks; the
/// prefix limits are lifted for the table size. Returns the plan and the
/// tables' prefixes.
pub fn l3_plan(v4: usize, v6: usize) -> anyhow::Result<L3Tables> {
    let plan = Arc::new(crate::config::compile(&l3_config()));
    let t4 = tables::ipv4_table(v4, 0x5eed_0004);
    let t6 = tables::ipv6_table(v6, 0x5eed_0006);
    let table = plan
        .route_table("bench", PeeringKind::Private)
        .ok_or_else(|| anyhow::anyhow!("bench plan has no l3 peering"))?;
    let mut t = table
        .lock()
        .map_err(|_| anyhow::anyhow!("route table lock poisoned"))?;
    t.set_limits(v4, v6);
    let mut routes: Vec<(IpNet, IpAddr)> = Vec::with_capacity(2 * (v4 + v6));
    for (net, _) in &t4 {
        routes.push((IpNet::V4(*net), "192.0.2.2".parse()?));
        routes.push((IpNet::V4(*net), "192.0.2.6".parse()?));
    }
    for (net, _) in &t6 {
        routes.push((IpNet::V6(*net), "2001:db8:0:1::2".parse()?));
        routes.push((IpNet::V6(*net), "2001:db8:0:1::6".parse()?));
    }
    t.bulk_load(&routes)?;
    drop(t);
    Ok((plan, t4, t6))
}

/// Access-side frames to addresses inside the tables: IPv4 64-byte frames,
/// IPv6 66-byte frames (the smallest UDP frame IPv6 allows), `n` distinct
/// destinations, the DSCP mix of the l2 cases.
pub fn l3_frames(
    t4: &[(ipnet::Ipv4Net, u32)],
    t6: &[(ipnet::Ipv6Net, u32)],
    n: usize,
    v6: bool,
    dst_mac: crate::wire::ethernet::Mac,
) -> Vec<Vec<u8>> {
    let dsts: Vec<IpAddr> = if v6 {
        tables::inside_v6(t6, n, 66)
            .into_iter()
            .map(|a| IpAddr::V6(a.into()))
            .collect()
    } else {
        tables::inside_v4(t4, n, 64)
            .into_iter()
            .map(|a| IpAddr::V4(a.into()))
            .collect()
    };
    dsts.into_iter()
        .enumerate()
        .map(|(i, dst)| {
            let src: IpAddr = if v6 {
                "2001:db8:ff::2".parse().expect("literal")
            } else {
                "203.0.113.2".parse().expect("literal")
            };
            let mut s = FrameSpec::udp(
                &[],
                src,
                dst,
                (40000 + (i % 20000) as u16, 443),
                DSCP_MIX[i % DSCP_MIX.len()] << 2,
                if v6 { 66 } else { 64 },
            );
            if let Payload::Ip { ttl, .. } = &mut s.payload {
                *ttl = 64;
            }
            s.dst_mac = dst_mac;
            s.build()
        })
        .collect()
}

/// The backbone router's MAC in the MPLS cases.
pub const BACKBONE_MAC: Mac = [0x02, 0, 0, 0, 0, 0xb1];
/// The VPN label of the `l3vpn-to-qinq` case's L3VPN attachment.
pub const L3VPN_LABEL: u32 = 1001;
/// The label of the `pw-to-qinq` case's pseudowire (with control word).
pub const PW_LABEL: u32 = 1101;

fn label(v: u32) -> Label {
    // The bench labels are all in 16..=1048575.
    Label::usable(v).unwrap_or_else(|_| unreachable!("bench label {v} is usable"))
}

/// An MPLS attachment to the backbone router: in by `label`, out by the
/// remote label `label + 1000` under transport label 16002.
fn mpls_access(label_in: u32, control_word: bool) -> MplsAccess {
    MplsAccess {
        label: label(label_in),
        remote_label: label(label_in + 1000),
        transport_label: Some(label(16002)),
        next_hop_mac: BACKBONE_MAC,
        control_word,
        ttl: TtlModel::Uniform,
        tc_map: [0, 1, 2, 3, 4, 5, 6, 7],
    }
}

/// Port `port` of `cfg` becomes a backbone port (transport label 16001).
fn backbone(cfg: &mut Config, port: usize) {
    if let Some(p) = cfg.ports.get_mut(port) {
        p.backbone = Some(Backbone {
            transport_label: Some(label(16001)),
            mtu: None,
        });
    }
}

/// The `l3vpn-to-qinq` plan: [`l3_config`] with the access side an L3VPN
/// attachment (label [`L3VPN_LABEL`]) on port 0, a backbone port, its
/// route tables those of `l3` (the l3 cases' plan: the same tables, built
/// once).
pub fn l3vpn_plan(l3: &Plan) -> Arc<Plan> {
    let mut cfg = l3_config();
    backbone(&mut cfg, port::PRIVATE as usize);
    cfg.circuits[0].peerings[0].access.mpls = Some(mpls_access(L3VPN_LABEL, false));
    let mut plan = crate::config::compile(&cfg);
    for (dst, src) in plan.l3.iter_mut().zip(&l3.l3) {
        dst.v4 = src.v4.clone();
        dst.v6 = src.v6.clone();
        dst.routes = src.routes.clone();
    }
    Arc::new(plan)
}

/// `frames` (untagged) as an L3VPN delivers them: the IP packet under
/// `label` (bottom of stack, TTL 64), the MACs kept.
pub fn labelled(frames: &[Vec<u8>], label: u32) -> Vec<Vec<u8>> {
    frames
        .iter()
        .map(|f| {
            let mut out = Vec::with_capacity(f.len() + 4);
            out.extend_from_slice(f.get(..12).unwrap_or_default());
            out.extend_from_slice(&ETHERTYPE_MPLS.to_be_bytes());
            out.extend_from_slice(&(label << 12 | 0x100 | 64).to_be_bytes());
            out.extend_from_slice(f.get(14..).unwrap_or_default());
            out
        })
        .collect()
}

/// The `pw-to-qinq` pipeline: the bench plan with the Microsoft peering's
/// access side a pseudowire (label [`PW_LABEL`], control word) on port 1,
/// a backbone port; every port up.
pub fn pw_pipeline() -> Pipeline {
    let mut cfg = config();
    backbone(&mut cfg, port::MICROSOFT as usize);
    cfg.circuits[0].peerings[1].access.mpls = Some(mpls_access(PW_LABEL, true));
    let plan = Arc::new(crate::config::compile(&cfg));
    let links = LinkState::new(plan.ports.len());
    Pipeline::new(plan, links)
}

/// The push case's customer frames as the pseudowire delivers them: behind
/// an Ethernet header (backbone router to our MAC on port 1), label
/// [`PW_LABEL`] and the control word.
pub fn pw_frames(sizes: Sizes) -> Vec<Vec<u8>> {
    let to = crate::plan::PortPlan::mac_of(port::MICROSOFT as usize);
    push_frames(sizes)
        .iter()
        .map(|f| {
            let mut out = Vec::with_capacity(f.len() + 22);
            out.extend_from_slice(&to);
            out.extend_from_slice(&BACKBONE_MAC);
            out.extend_from_slice(&ETHERTYPE_MPLS.to_be_bytes());
            out.extend_from_slice(&(PW_LABEL << 12 | 0x100 | 255).to_be_bytes());
            out.extend_from_slice(&[0; 4]);
            out.extend_from_slice(f);
            out
        })
        .collect()
}
