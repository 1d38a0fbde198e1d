import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NAMESPACE_SEPARATOR, qualify, ResourceDirectory, templateMatcher, unqualify } from './routing.ts';

describe('qualify / unqualify', () => {
  it('joins upstream and name with "__"', () => {
    assert.equal(NAMESPACE_SEPARATOR, '__');
    assert.equal(qualify('files', 'read_file'), 'files__read_file');
  });

  it('splits at the first "__": upstream names cannot hold one, tool names can', () => {
    assert.deepEqual(unqualify('files__read_file'), { upstream: 'files', name: 'read_file' });
    assert.deepEqual(unqualify('up__a__b'), { upstream: 'up', name: 'a__b' });
    assert.deepEqual(unqualify('up____x'), { upstream: 'up', name: '__x' });
    assert.deepEqual(unqualify('up___x'), { upstream: 'up', name: '_x' });
    assert.deepEqual(unqualify('my-up_1__tool'), { upstream: 'my-up_1', name: 'tool' });
  });

  it('round-trips names that contain "__" after the first', () => {
    for (const name of ['echo', 'a__b', '__leading', 'trailing__', 'x____y', '']) {
      assert.deepEqual(unqualify(qualify('up', name)), { upstream: 'up', name });
    }
  });

  it('keeps an empty name after the separator', () => {
    assert.deepEqual(unqualify('up__'), { upstream: 'up', name: '' });
  });

  it('returns undefined without a separator or without an upstream', () => {
    assert.equal(unqualify('echo'), undefined);
    assert.equal(unqualify('up_echo'), undefined);
    assert.equal(unqualify(''), undefined);
    assert.equal(unqualify('__echo'), undefined);
    assert.equal(unqualify('____echo'), undefined);
  });
});

describe('templateMatcher', () => {
  it('matches one or more characters per expression, the literal parts exactly', () => {
    const m = templateMatcher('demo://resource/{id}');
    assert.equal(m.test('demo://resource/1'), true);
    assert.equal(m.test('demo://resource/a/b'), true);
    assert.equal(m.test('demo://resource/'), false);
    assert.equal(m.test('demo://resource'), false);
    assert.equal(m.test('demo://other/1'), false);
    assert.equal(m.test('xdemo://resource/1'), false, 'anchored at the start');
  });

  it('handles several expressions and literal text between them', () => {
    const m = templateMatcher('repo://{owner}/{name}/blob/{path}');
    assert.equal(m.test('repo://acme/attest/blob/README.md'), true);
    assert.equal(m.test('repo://acme/attest/tree/README.md'), false);
    assert.equal(m.test('repo://acme/attest/blob/'), false, 'anchored at the end');
  });

  it('takes regex metacharacters in the literal parts literally', () => {
    const m = templateMatcher('file:///a.b/(x)+?/{p}.txt');
    assert.equal(m.test('file:///a.b/(x)+?/notes.txt'), true);
    assert.equal(m.test('file:///aXb/(x)+?/notes.txt'), false);
    assert.equal(m.test('file:///a.b/xx/notes.txt'), false);
    assert.equal(m.test('file:///a.b/(x)+?/notesXtxt'), false);
    assert.equal(templateMatcher('s://[x]|y^$\\').test('s://[x]|y^$\\'), true);
    assert.equal(templateMatcher('s://[x]').test('s://x'), false);
  });

  it('matches a template without expressions only by equality', () => {
    const m = templateMatcher('config://app');
    assert.equal(m.test('config://app'), true);
    assert.equal(m.test('config://apps'), false);
  });

  it('matches across newlines inside an expression', () => {
    assert.equal(templateMatcher('note://{text}').test('note://a\nb'), true);
  });

  it(
    'lets an RFC 6570 operator expression that expands to nothing match nothing',
    
    () => {
      const m = templateMatcher('search://items{?q,page}');
      assert.equal(m.test('search://items?q=x'), true);
      assert.equal(m.test('search://items'), true);
    },
  );
});

describe('ResourceDirectory', () => {
  it('knows no owner before anything is listed', () => {
    const dir = new ResourceDirectory();
    assert.equal(dir.ownerOfUri('file:///x'), undefined);
    assert.equal(dir.ownerOfTemplate('file:///{path}'), undefined);
  });

  it('maps each listed URI to its upstream', () => {
    const dir = new ResourceDirectory();
    dir.setResources('a', ['res://1', 'res://2']);
    dir.setResources('b', ['res://3']);
    assert.equal(dir.ownerOfUri('res://1'), 'a');
    assert.equal(dir.ownerOfUri('res://2'), 'a');
    assert.equal(dir.ownerOfUri('res://3'), 'b');
    assert.equal(dir.ownerOfUri('res://4'), undefined);
  });

  it('replaces an upstream\'s URIs on each setResources, leaving other upstreams alone', () => {
    const dir = new ResourceDirectory();
    dir.setResources('a', ['res://1', 'res://2']);
    dir.setResources('b', ['res://3']);
    dir.setResources('a', ['res://2', 'res://5']);
    assert.equal(dir.ownerOfUri('res://1'), undefined, 'dropped from a\'s list');
    assert.equal(dir.ownerOfUri('res://2'), 'a');
    assert.equal(dir.ownerOfUri('res://5'), 'a');
    assert.equal(dir.ownerOfUri('res://3'), 'b');
    dir.setResources('a', []);
    assert.equal(dir.ownerOfUri('res://2'), undefined);
    assert.equal(dir.ownerOfUri('res://3'), 'b');
  });

  it('gives a URI listed by two upstreams to the first, and keeps it there when the first lists again', () => {
    const dir = new ResourceDirectory();
    dir.setResources('a', ['res://shared']);
    dir.setResources('b', ['res://shared', 'res://b-only']);
    assert.equal(dir.ownerOfUri('res://shared'), 'a');
    assert.equal(dir.ownerOfUri('res://b-only'), 'b');
    dir.setResources('b', ['res://shared']);
    assert.equal(dir.ownerOfUri('res://shared'), 'a');
    dir.setResources('a', ['res://shared']);
    assert.equal(dir.ownerOfUri('res://shared'), 'a');
  });

  it('hands a contested URI to the next upstream that lists it once the first drops it', () => {
    const dir = new ResourceDirectory();
    dir.setResources('a', ['res://shared']);
    dir.setResources('b', ['res://shared']);
    dir.setResources('a', []);
    dir.setResources('b', ['res://shared']);
    assert.equal(dir.ownerOfUri('res://shared'), 'b');
  });

  it(
    'still routes a contested URI to the other lister when the first drops it before the other lists again',
    
    () => {
      const dir = new ResourceDirectory();
      dir.setResources('a', ['res://shared']);
      dir.setResources('b', ['res://shared']);
      dir.setResources('a', []);
      assert.equal(dir.ownerOfUri('res://shared'), 'b');
    },
  );

  it('routes URIs that match a listed template to the template\'s upstream', () => {
    const dir = new ResourceDirectory();
    dir.setTemplates('a', ['demo://resource/dynamic/{id}']);
    dir.setTemplates('b', ['file:///{path}']);
    assert.equal(dir.ownerOfUri('demo://resource/dynamic/7'), 'a');
    assert.equal(dir.ownerOfUri('file:///etc/hosts'), 'b');
    assert.equal(dir.ownerOfUri('other://x'), undefined);
    assert.equal(dir.ownerOfTemplate('demo://resource/dynamic/{id}'), 'a');
    assert.equal(dir.ownerOfTemplate('file:///{path}'), 'b');
    assert.equal(dir.ownerOfTemplate('file:///{other}'), undefined, 'templates are owned by their exact text');
  });

  it('prefers a concrete URI\'s owner over a matching template of another upstream', () => {
    const dir = new ResourceDirectory();
    dir.setTemplates('b', ['file:///{path}']);
    dir.setResources('a', ['file:///readme.md']);
    assert.equal(dir.ownerOfUri('file:///readme.md'), 'a');
    assert.equal(dir.ownerOfUri('file:///other.md'), 'b');
  });

  it('replaces an upstream\'s templates on each setTemplates', () => {
    const dir = new ResourceDirectory();
    dir.setTemplates('a', ['x://{id}', 'y://{id}']);
    dir.setTemplates('b', ['z://{id}']);
    dir.setTemplates('a', ['y://{id}']);
    assert.equal(dir.ownerOfTemplate('x://{id}'), undefined);
    assert.equal(dir.ownerOfUri('x://1'), undefined);
    assert.equal(dir.ownerOfTemplate('y://{id}'), 'a');
    assert.equal(dir.ownerOfTemplate('z://{id}'), 'b');
    dir.setTemplates('a', []);
    assert.equal(dir.ownerOfUri('y://1'), undefined);
    assert.equal(dir.ownerOfUri('z://1'), 'b');
  });

  it('gives a template listed by two upstreams to the first', () => {
    const dir = new ResourceDirectory();
    dir.setTemplates('a', ['file:///{path}']);
    dir.setTemplates('b', ['file:///{path}']);
    assert.equal(dir.ownerOfTemplate('file:///{path}'), 'a');
    assert.equal(dir.ownerOfUri('file:///x'), 'a');
  });

  it(
    'keeps a contested template with its first owner when that owner lists again',
    
    () => {
      const dir = new ResourceDirectory();
      dir.setTemplates('a', ['file:///{path}']);
      dir.setTemplates('b', ['file:///{path}']);
      dir.setTemplates('a', ['file:///{path}']);
      assert.equal(dir.ownerOfTemplate('file:///{path}'), 'a');
      assert.equal(dir.ownerOfUri('file:///x'), 'a');
    },
  );
});
