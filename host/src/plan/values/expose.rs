//! `EXPOSE`, after BuildKit's `dockerfile2llb/convert_expose.go` (its own
//! port-spec parser, which replaced `nat.ParsePortSpecs`).

use std::fmt;
use std::net::IpAddr;

use super::ValueError;
use super::go::parse_int;

/// The ports one `EXPOSE` word adds, and the lint warnings it raises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expose {
    /// Image-config `ExposedPorts` keys, `<port>/<proto>` with a lowercase
    /// protocol, one per port of a range, in ascending order.
    pub ports: Vec<String>,
    /// BuildKit lint warnings for this word (in BuildKit's order).
    pub warnings: Vec<ExposeWarning>,
}

/// A BuildKit lint warning about an `EXPOSE` word; each carries the word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExposeWarning {
    /// `ExposeProtoCasing`: the protocol is not lowercase (`80/TCP`).
    ProtoCasing(String),
    /// `ExposeInvalidFormat`: an IP address or host port was given
    /// (`127.0.0.1:80:80`, `8080:80`); only the container port is used.
    InvalidFormat(String),
}

impl ExposeWarning {
    /// The BuildKit lint rule name.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::ProtoCasing(_) => "ExposeProtoCasing",
            Self::InvalidFormat(_) => "ExposeInvalidFormat",
        }
    }
}

impl fmt::Display for ExposeWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ProtoCasing(p) => write!(
                f,
                "Defined protocol '{p}' in EXPOSE instruction should be lowercase"
            ),
            Self::InvalidFormat(p) => write!(
                f,
                "EXPOSE instruction should not define an IP address or host-port mapping, found '{p}'"
            ),
        }
    }
}

/// Parses one (already expanded and split) `EXPOSE` word.
///
/// Forms: `80`, `80/udp`, `8000-8002` (each port), `[[ip:]host:]container`
/// where only the container port is kept (with an
/// [`ExposeWarning::InvalidFormat`]). Protocols are `tcp` (default), `udp`,
/// `sctp`, in any case, stored lowercase. Ports are 0-65535 and parsed like
/// Go's `strconv.ParseInt` (so `+80` and `080` are port 80). An IP address
/// must be valid (IPv6 may be in brackets) and a host-port range must be as
/// long as the container range unless the container port is a single port.
pub fn parse_expose(s: &str) -> Result<Expose, ValueError> {
    let (ip, host_port, container) = split_parts(s);
    let (port, proto) = container.split_once('/').unwrap_or((container, ""));
    if port.is_empty() {
        return Err(ValueError::new(format!(
            "invalid port \"{s}\": no port specified, expected <port>[/<proto>]"
        )));
    }
    let proto = match proto.to_lowercase().as_str() {
        "" => "tcp",
        "tcp" | "udp" | "sctp" => proto,
        _ => {
            return Err(ValueError::new(format!(
                "invalid port \"{s}\": invalid proto \"{proto}\", expected tcp, udp or sctp"
            )));
        }
    };
    let mut warnings = Vec::new();
    if proto != proto.to_lowercase() {
        warnings.push(ExposeWarning::ProtoCasing(s.to_owned()));
    }
    if !ip.is_empty() || !host_port.is_empty() {
        warnings.push(ExposeWarning::InvalidFormat(s.to_owned()));
    }

    if !ip.is_empty() {
        let bare = if ip.starts_with('[') {
            // net.SplitHostPort(ip + ":"): the first ']' must end the text.
            match ip.find(']') {
                Some(end) if end == ip.len() - 1 && !ip[1..end].contains('[') => &ip[1..end],
                _ => {
                    return Err(ValueError::new(format!(
                        "invalid IP address {ip}: expected an IPv4 or IPv6 address"
                    )));
                }
            }
        } else {
            ip
        };
        if bare.parse::<IpAddr>().is_err() {
            return Err(ValueError::new(format!(
                "invalid IP address: {bare}: expected an IPv4 or IPv6 address"
            )));
        }
    }

    let (start, end) = port_range(port).map_err(|e| {
        ValueError::new(format!(
            "invalid containerPort: {port}: {e}, expected <port> or <start>-<end> within 0-65535"
        ))
    })?;
    if !host_port.is_empty() {
        let (host_start, host_end) = port_range(host_port).map_err(|e| {
            ValueError::new(format!(
                "invalid hostPort: {host_port}: {e}, expected <port> or <start>-<end> within 0-65535"
            ))
        })?;
        if end - start != host_end - host_start && end != start {
            return Err(ValueError::new(format!(
                "invalid ranges specified for container and host Ports: {port} and {host_port}: \
                 expected ranges of the same length"
            )));
        }
    }

    let proto = proto.to_lowercase();
    let ports = (start..=end).map(|p| format!("{p}/{proto}")).collect();
    Ok(Expose { ports, warnings })
}

/// `[ip:]host:container`, with everything before the last two `:` as the IP.
fn split_parts(s: &str) -> (&str, &str, &str) {
    let Some((rest, container)) = s.rsplit_once(':') else {
        return ("", "", s);
    };
    match rest.rsplit_once(':') {
        None => ("", rest, container),
        Some((ip, host)) => (ip, host, container),
    }
}

fn port_range(ports: &str) -> Result<(u32, u32), String> {
    if ports.is_empty() {
        return Err("empty string specified for ports".to_owned());
    }
    let (start, end) = match ports.split_once('-') {
        Some((s, e)) => (s, Some(e)),
        None => (ports, None),
    };
    let start_port =
        port_number(start).map_err(|e| format!("invalid start port '{start}': {e}"))?;
    let Some(end) = end.filter(|e| *e != start) else {
        return Ok((start_port, start_port));
    };
    let end_port = port_number(end).map_err(|e| format!("invalid end port '{end}': {e}"))?;
    if end_port < start_port {
        return Err(format!("invalid port range: {ports}"));
    }
    Ok((start_port, end_port))
}

fn port_number(raw: &str) -> Result<u32, &'static str> {
    if raw.is_empty() {
        return Err("value is empty");
    }
    match parse_int(raw, 64) {
        None => Err("invalid syntax"),
        Some(p) if !(0..=65535).contains(&p) => Err("value out of range (0-65535)"),
        Some(p) => Ok(p as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(s: &str) -> Vec<String> {
        parse_expose(s).unwrap().ports
    }

    fn err(s: &str) -> String {
        parse_expose(s).unwrap_err().to_string()
    }

    #[test]
    fn simple() {
        assert_eq!(ports("80"), ["80/tcp"]);
        assert_eq!(ports("80/tcp"), ["80/tcp"]);
        assert_eq!(ports("53/udp"), ["53/udp"]);
        assert_eq!(ports("9/sctp"), ["9/sctp"]);
        assert_eq!(ports("0"), ["0/tcp"]);
        assert_eq!(ports("65535"), ["65535/tcp"]);
        assert_eq!(ports("080"), ["80/tcp"]);
        assert_eq!(ports("+80"), ["80/tcp"]);
        assert!(parse_expose("80/udp").unwrap().warnings.is_empty());
    }

    #[test]
    fn ranges() {
        assert_eq!(ports("8000-8002"), ["8000/tcp", "8001/tcp", "8002/tcp"]);
        assert_eq!(ports("8000-8002/udp"), ["8000/udp", "8001/udp", "8002/udp"]);
        assert_eq!(ports("80-80"), ["80/tcp"]);
        assert_eq!(ports("0-1"), ["0/tcp", "1/tcp"]);
        assert!(err("8002-8000").contains("invalid port range: 8002-8000"));
        assert!(err("80-").contains("invalid end port ''"));
        assert!(err("-80").contains("invalid start port ''"));
        assert!(err("80-81-82").contains("invalid end port '81-82'"));
    }

    #[test]
    fn protocol_case() {
        let e = parse_expose("80/TCP").unwrap();
        assert_eq!(e.ports, ["80/tcp"]);
        assert_eq!(e.warnings, [ExposeWarning::ProtoCasing("80/TCP".into())]);
        assert_eq!(e.warnings[0].rule(), "ExposeProtoCasing");
        assert_eq!(
            e.warnings[0].to_string(),
            "Defined protocol '80/TCP' in EXPOSE instruction should be lowercase"
        );
        assert_eq!(ports("80/Udp"), ["80/udp"]);
    }

    #[test]
    fn host_mappings_warn_and_keep_container_port() {
        let e = parse_expose("8080:80").unwrap();
        assert_eq!(e.ports, ["80/tcp"]);
        assert_eq!(e.warnings, [ExposeWarning::InvalidFormat("8080:80".into())]);
        assert_eq!(e.warnings[0].rule(), "ExposeInvalidFormat");
        assert_eq!(ports("127.0.0.1:8080:80/udp"), ["80/udp"]);
        assert_eq!(ports(":80"), ["80/tcp"]);
        assert_eq!(ports("127.0.0.1::80"), ["80/tcp"]);
        assert_eq!(ports("[::1]:8080:80"), ["80/tcp"]);
        assert_eq!(ports("::1:8080:80"), ["80/tcp"]);
        assert_eq!(ports("8000-8001:80-81"), ["80/tcp", "81/tcp"]);
        assert_eq!(ports("8000-8010:80"), ["80/tcp"]);
        let e = parse_expose("1.2.3.4:80:80/TCP").unwrap();
        assert_eq!(e.warnings.len(), 2);
        assert_eq!(e.warnings[0].rule(), "ExposeProtoCasing");
    }

    #[test]
    fn errors() {
        assert!(err("").contains("no port specified"));
        assert!(err("/tcp").contains("no port specified"));
        assert!(err("80/http").contains("invalid proto \"http\""));
        assert!(err("80/tcp/x").contains("invalid proto \"tcp/x\""));
        assert!(err("65536").contains("out of range"));
        assert!(err("-1").contains("invalid start port ''"));
        assert!(err("http").contains("invalid containerPort: http"));
        assert!(err("80 ").contains("invalid containerPort"));
        assert!(err("8080:").contains("no port specified"));
        assert!(err("x:80").contains("invalid hostPort: x"));
        assert!(err("1.2.3:80:80").contains("invalid IP address: 1.2.3"));
        assert!(err("[::1:80:80").contains("invalid IP address"));
        assert!(err("[::1]x:80:80").contains("invalid IP address"));
        assert!(err("8000-8001:80-82").contains("invalid ranges"));
        for e in [err("80/http"), err("http")] {
            assert!(e.contains("expected"), "{e}");
            assert!(!e.ends_with('.'));
        }
    }
}
