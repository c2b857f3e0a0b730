import t from 'tap';
import { thrown } from '../harness/thrown.js';
import { parseRecordingUri } from '../../src/sip/request-uri.js';

t.test('the RM Request-URI of the samples', async (t) => {
  const u = parseRecordingUri('sip:msml=55c29460000054b3@10.10.0.30:5070;transport=tcp;dn=8463376;record;tenant-dbid=1;media-service=record;gvp-tenant-id=Environment.Record_Profile');
  t.equal(u.confId, '55c29460000054b3');
  t.equal(u.host, '10.10.0.30');
  t.equal(u.port, 5070);
  t.equal(u.dn, '8463376');
  t.equal(u.record, true);
  t.equal(u.tenantDbid, '1');
  t.equal(u.mediaService, 'record');
  t.equal(u.tenant, 'Environment');
  t.equal(u.ivrProfile, 'Record_Profile');
  t.equal(u.params.transport, 'tcp');
});

t.test('the RM log line form, without port and tenant', async (t) => {
  const u = parseRecordingUri('sip:msml=55c29460000054b3@euw1srv-000-rm.euw1.genprim.com;transport=tcp;dn=8463376;record;tenant-dbid=1;media-service=record');
  t.equal(u.port, null);
  t.equal(u.tenant, null);
  t.equal(u.ivrProfile, null);
  t.equal(u.host, 'euw1srv-000-rm.euw1.genprim.com');
});

t.test('escapes, IPv6, a bare msml user, no record flag', async (t) => {
  const u = parseRecordingUri('sip:msml=conf%3A1@[2001:db8::1]:5060;dn=%2B1416;gvp-tenant-id=T');
  t.equal(u.confId, 'conf:1');
  t.equal(u.host, '[2001:db8::1]');
  t.equal(u.dn, '+1416');
  t.equal(u.record, false);
  t.equal(u.tenant, 'T');
  t.equal(u.ivrProfile, null);
  t.equal(parseRecordingUri('sip:msml@127.0.0.1:5060').confId, null);
});

t.test('what is not a recording URI is refused with a SIP status', async (t) => {
  t.match(thrown(() => parseRecordingUri('sip:service@127.0.0.1')), { sipStatus: 404 });
  t.match(thrown(() => parseRecordingUri('tel:+14160000001')), { sipStatus: 400 });
  t.match(thrown(() => parseRecordingUri('sip:msml=x@host:99999')), { sipStatus: 400 });
  t.match(thrown(() => parseRecordingUri('sip:msml=%zz@host')), { sipStatus: 400 });
});
