//! What a node asks its driver to do: one [`Output`] at a time from
//! [`Node::poll`](crate::Node::poll), so that a driver is one exhaustive `match` and cannot
//! forget an effect.

use std::net::SocketAddr;
use std::time::Duration;

use crate::event::Event;

/// One thing the driver must do, in the order the node asked for them.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Send a datagram.
    Transmit(Transmit),
    /// Run a push-pull exchange with a member.
    Exchange(Exchange),
    /// Try a TCP connection to a member's gossip port.
    Reachability(ReachabilityCheck),
    /// A membership change to report.
    Event(Event),
    /// The graceful leave is over: every member this node handed its departure to has answered,
    /// or its exchange failed. The driver may stop the node.
    Departed,
}

/// A datagram the driver must send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: SocketAddr,
    /// Bytes to send as one UDP datagram.
    pub payload: Vec<u8>,
}

/// A push-pull exchange the driver must run: connect to `peer`, send
/// [`Node::sync_hello`](crate::Node::sync_hello) and [`Node::sync_payload`](crate::Node::sync_payload),
/// then hand the peer's answer to [`Node::handle_sync_answer`](crate::Node::handle_sync_answer),
/// or report the failure with [`Node::handle_sync_failed`](crate::Node::handle_sync_failed). The
/// node keeps count of the exchanges in flight, so every one must end in one of the two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// Names the exchange when its end is reported.
    pub id: u32,
    /// The member's gossip address.
    pub peer: SocketAddr,
}

/// A connection attempt the driver must make: whether anything accepts TCP connections at a
/// member's gossip address (its push-pull listener). Answer with
/// [`Node::handle_reachability`](crate::Node::handle_reachability).
///
/// The driver makes two attempts at once, so that one lost handshake packet does not pass for
/// silence, and answers with the first decisive one: [`Reachability::Accepting`] or
/// [`Reachability::Refused`]. When neither is decisive within `wait` it answers `on_silence`;
/// when both fail otherwise (an ICMP error, say), [`Reachability::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReachabilityCheck {
    /// Names the check when it is answered.
    pub probe: u32,
    /// Where to connect.
    pub addr: SocketAddr,
    /// How long to wait for a handshake.
    pub wait: Duration,
    /// What no answer within `wait` means: [`Reachability::Silent`] for a host that has answered
    /// this node quickly before, else [`Reachability::Unknown`].
    pub on_silence: Reachability,
}

/// What a [`ReachabilityCheck`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reachability {
    /// A connection was established: something listens there (a live or a frozen process).
    Accepting,
    /// The host answered that nothing listens there (TCP reset, ICMP port unreachable): the
    /// member's host is up but its process is gone.
    Refused,
    /// Nothing answered within the check's `wait`, from a host that has answered this node's
    /// attempts before within a fraction of it: the host is gone (a container killed with its
    /// network, a machine powered off) or cut off from this node.
    Silent,
    /// No answer in time from a host not known to answer, or any other error: says nothing
    /// either way.
    Unknown,
}
