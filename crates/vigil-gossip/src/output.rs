//! What a node asks its driver to do: one [`Output`] at a time from
//! [`Node::poll`](crate::Node::poll), so that a driver is one exhaustive `match` and cannot
//! forget an effect.

use std::net::SocketAddr;

use crate::event::Event;

/// One thing the driver must do, in the order the node asked for them.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Send a datagram.
    Transmit(Transmit),
    /// Run a push-pull exchange with a member.
    Exchange(Exchange),
    /// Try a TCP connection to a silent member's gossip port.
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReachabilityCheck {
    /// The probe this check belongs to.
    pub probe: u32,
    /// Where to connect.
    pub addr: SocketAddr,
}

/// What a [`ReachabilityCheck`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reachability {
    /// A connection was established: something listens there (a live or a frozen process).
    Accepting,
    /// The host answered that nothing listens there (TCP reset, ICMP port unreachable): the
    /// member's host is up but its process is gone.
    Refused,
    /// No answer in time, or any other error: says nothing either way.
    Unknown,
}
