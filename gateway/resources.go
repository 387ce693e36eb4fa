package gateway

import (
	"slices"

	"qqxmpp/qqproto"
)

// resources are the user's available XMPP resources, as their presences
// to the gateway's JIDs tell. A user has one to a few: a slice, searched
// from the start, costs a fraction of a map's eight slots.
type resources struct {
	m   []resource
	seq uint64
}

// resource is one available resource of the user.
type resource struct {
	name  string // the resourcepart
	show  string // "", away, chat, dnd, xa
	prio  int
	seq   uint64 // order of arrival, to break priority ties: latest wins
	epoch uint64 // connection epoch in which the server last confirmed it
	// viaDomain: the domain JID receives its presence, so the domain hears
	// when it goes. Otherwise buddies holds the buddy JIDs it is available
	// to, sorted, and it is gone when none is left.
	viaDomain bool
	buddies   []qqproto.UIN
	// caps is the key of its entity capabilities being asked for or known
	// (usercaps.go); avatars, that they ask for avatar notifications;
	// vcards, if they ask for vCard4 ones, what it was sent (pep.go).
	caps    string
	avatars bool
	vcards  *vcardWatch
}

func (rs *resources) any() bool { return len(rs.m) > 0 }

// count is how many resources are available.
func (rs *resources) count() int { return len(rs.m) }

// index is where the resource named res is, or -1.
func (rs *resources) index(res string) int {
	return slices.IndexFunc(rs.m, func(r resource) bool { return r.name == res })
}

// get returns the resource named res.
func (rs *resources) get(res string) (resource, bool) {
	if i := rs.index(res); i >= 0 {
		return rs.m[i], true
	}
	return resource{}, false
}

// put records r as the resource named res.
func (rs *resources) put(res string, r resource) {
	r.name = res
	if i := rs.index(res); i >= 0 {
		rs.m[i] = r
		return
	}
	rs.m = append(rs.m, r)
}

// forget drops a resource; it reports whether it was known.
func (rs *resources) forget(res string) bool {
	i := rs.index(res)
	if i >= 0 {
		rs.m = slices.Delete(rs.m, i, i+1)
	}
	return i >= 0
}

// names lists the resources' names.
func (rs *resources) names() []string {
	out := make([]string, 0, len(rs.m))
	for _, r := range rs.m {
		out = append(out, r.name)
	}
	return out
}

// set records a presence of resource res sent to target: the domain
// (uin 0) or a buddy JID, in connection epoch.
//
// A server broadcasts a user's presence to every contact with a
// subscription to it, so each change may arrive once per buddy and once
// for the domain. An unavailable to one buddy JID alone is no departure:
// servers send that when the user removes the contact from the roster
// (RFC 6121 3.3.2). So a resource the domain sees goes only when the
// domain hears it, and one seen only by buddy JIDs when the last of them
// does.
//
// It reports whether res is a resource it did not know, or had not heard
// from since the component last connected.
func (rs *resources) set(res string, target qqproto.UIN, available bool, p *presenceIn, epoch uint64) (added bool) {
	r, known := rs.get(res)
	// One not confirmed since the component reconnected may have missed
	// what was re-announced: it counts as new.
	added = !known || r.epoch < epoch
	if !available {
		switch {
		case !known:
		case target == 0:
			rs.forget(res)
		case r.viaDomain:
		default:
			if i, ok := slices.BinarySearch(r.buddies, target); ok {
				r.buddies = slices.Delete(r.buddies, i, i+1)
			}
			if len(r.buddies) == 0 {
				rs.forget(res)
			} else {
				rs.put(res, r)
			}
		}
		return false
	}
	rs.seq++
	r.show, r.prio, r.seq, r.epoch = p.show, p.prio, rs.seq, epoch
	if target == 0 {
		r.viaDomain, r.buddies = true, nil
	} else if i, ok := slices.BinarySearch(r.buddies, target); !r.viaDomain && !ok {
		r.buddies = slices.Insert(r.buddies, i, target)
	}
	rs.put(res, r)
	return added
}

// addresses are where presence for the user goes: each known resource's
// full JID, so that each gets it once, or the bare JID when no resource
// is known by name.
func (rs *resources) addresses(bare string) []string {
	var out []string
	for _, r := range rs.m {
		if r.name != "" {
			out = append(out, bare+"/"+r.name)
		}
	}
	if len(out) == 0 {
		return []string{bare}
	}
	return out
}

// caughtUp reports whether the resource named res (for "", every named
// one) has been heard from since the component connected in epoch, and so
// was shown everything the session shows.
func (rs *resources) caughtUp(res string, epoch uint64) bool {
	if res != "" {
		r, ok := rs.get(res)
		return ok && r.epoch == epoch
	}
	named := false
	for _, r := range rs.m {
		if r.name != "" {
			if r.epoch != epoch {
				return false
			}
			named = true
		}
	}
	return named
}

// sweep forgets resources not confirmed since epoch; it reports whether
// any went.
func (rs *resources) sweep(epoch uint64) bool {
	n := len(rs.m)
	rs.m = slices.DeleteFunc(rs.m, func(r resource) bool { return r.epoch < epoch })
	return len(rs.m) < n
}

// confirmedIn reports whether a resource was confirmed in epoch.
func (rs *resources) confirmedIn(epoch uint64) bool {
	for _, r := range rs.m {
		if r.epoch == epoch {
			return true
		}
	}
	return false
}

// wantedStatus is the QQ state for the user's presence: that of the
// available resource with the highest priority (the latest of equals).
func (rs *resources) wantedStatus() qqproto.Status {
	var best resource
	found := false
	for _, r := range rs.m {
		if !found || r.prio > best.prio || (r.prio == best.prio && r.seq > best.seq) {
			best, found = r, true
		}
	}
	if !found {
		return qqproto.StatusOffline
	}
	switch best.show { // spec: state mapping
	case "away", "xa", "dnd":
		return qqproto.StatusBusy
	}
	return qqproto.StatusOnline
}
