import { test } from 'node:test';
import assert from 'node:assert/strict';
import { categoryOfMediaType, sniff } from './filetype.js';
import { fakeElf, fakePe, tinyPdf, tinyPng } from '../../test/mime/fixtures.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const zipWith = (name: string, data = '') => {
  const h = Buffer.alloc(30);
  h.writeUInt32LE(0x04034b50, 0);
  h.writeUInt16LE(name.length, 26);
  h.writeUInt16LE(0, 28);
  return Buffer.concat([h, Buffer.from(name, 'latin1'), Buffer.from(data, 'latin1')]);
};

test('executables are recognised by their magic, whatever they are called', () => {
  assert.equal(sniff(fakePe()).kind, 'pe');
  assert.equal(sniff(fakePe()).category, 'executable');
  assert.equal(sniff(Buffer.from('MZ\x90\x00\x03', 'latin1')).kind, 'dos-mz');
  assert.equal(sniff(fakeElf()).kind, 'elf');
  assert.equal(sniff(hex('cffaedfe 07000001 03000000')).kind, 'macho');
  assert.equal(sniff(hex('feedface 00000007')).kind, 'macho');
  assert.equal(sniff(hex('cafebabe 00000002 01000007')).kind, 'macho-fat');
  assert.equal(sniff(hex('cafebabe 00000034')).kind, 'java-class');
  assert.equal(sniff(hex('4c000000 01140200 00000000 c0000000 00000046 9b000800')).kind, 'lnk');
});

test('"#!" scripts are scripts; a "#!" without an interpreter path is not', () => {
  const t = sniff(Buffer.from('#!/bin/sh\nrm -rf ~\n'));
  assert.equal(t.category, 'script');
  assert.match(t.description, /#!\/bin\/sh/);
  assert.equal(sniff(Buffer.from('\ufeff#!/usr/bin/env python3\n')).kind, 'shebang');
  assert.equal(sniff(Buffer.from('#! not a script')).kind, 'unknown');
});

test('archives, documents and images', () => {
  assert.equal(sniff(zipWith('readme.txt')).kind, 'zip');
  assert.equal(sniff(zipWith('[Content_Types].xml')).kind, 'ooxml');
  assert.equal(sniff(zipWith('word/document.xml')).category, 'document');
  assert.equal(sniff(zipWith('META-INF/MANIFEST.MF')).kind, 'jar');
  assert.equal(sniff(zipWith('mimetype', 'application/vnd.oasis.opendocument.text')).kind, 'odf');
  assert.equal(sniff(Buffer.from('Rar!\x1a\x07\x01\x00', 'latin1')).kind, 'rar');
  assert.equal(sniff(hex('377abcaf271c0004')).kind, '7z');
  assert.equal(sniff(hex('1f8b0800')).kind, 'gzip');
  assert.equal(sniff(Buffer.from('MSCF\0\0\0\0', 'latin1')).kind, 'cab');
  assert.equal(sniff(tinyPdf()).kind, 'pdf');
  assert.equal(sniff(hex('d0cf11e0a1b11ae1')).kind, 'ole');
  assert.equal(sniff(tinyPng()).kind, 'png');
  assert.equal(sniff(hex('ffd8ffe000104a464946')).kind, 'jpeg');
  assert.equal(sniff(Buffer.from('GIF89a\x01\x00', 'latin1')).kind, 'gif');
  const tar = Buffer.alloc(512);
  tar.write('ustar', 257);
  assert.equal(sniff(tar).kind, 'tar');
});

test('text, empty and short content is unknown', () => {
  assert.equal(sniff(Buffer.from('Hello, world')).kind, 'unknown');
  assert.equal(sniff(Buffer.alloc(0)).kind, 'unknown');
  assert.equal(sniff(Buffer.from('M')).kind, 'unknown');
});

test('declared media types map to what they claim', () => {
  assert.equal(categoryOfMediaType('image/jpeg'), 'image');
  assert.equal(categoryOfMediaType('application/pdf'), 'document');
  assert.equal(categoryOfMediaType('application/x-msdownload'), 'executable');
  assert.equal(categoryOfMediaType('application/zip'), 'archive');
  assert.equal(categoryOfMediaType('application/vnd.ms-cab-compressed'), 'archive');
  assert.equal(categoryOfMediaType('application/vnd.ms-excel'), 'document');
  assert.equal(categoryOfMediaType('application/octet-stream'), 'generic');
  assert.equal(categoryOfMediaType('text/plain'), 'text');
});
