"""mapping overrides and scans

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 20:50:05.158847
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('mapping_override',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('entity', sa.String(length=20), nullable=False),
    sa.Column('cw_key', sa.String(length=500), nullable=False),
    sa.Column('qbo_id', sa.String(length=40), nullable=False),
    sa.Column('qbo_name_at_save', sa.String(length=500), nullable=True),
    sa.Column('created_by', sa.String(length=254), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_mapping_override_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mapping_override')),
    sa.UniqueConstraint('company_id', 'entity', 'cw_key', name='uq_mapping_override_value')
    )
    op.create_table('mapping_scan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('records', sa.Integer(), nullable=False),
    sa.Column('records_with_errors', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_mapping_scan_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mapping_scan'))
    )
    with op.batch_alter_table('mapping_scan', schema=None) as batch_op:
        batch_op.create_index('ix_mapping_scan_company_id_desc', ['company_id', 'id'], unique=False)

    op.create_table('mapping_value',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scan_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('cw_value', sa.String(length=500), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('qbo_id', sa.String(length=40), nullable=True),
    sa.Column('qbo_name', sa.String(length=500), nullable=True),
    sa.Column('records', sa.Integer(), nullable=False),
    sa.Column('record_refs', sa.JSON(), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('hint', sa.Text(), nullable=True),
    sa.Column('candidates', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['scan_id'], ['mapping_scan.id'], name=op.f('fk_mapping_value_scan_id_mapping_scan'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mapping_value'))
    )
    with op.batch_alter_table('mapping_value', schema=None) as batch_op:
        batch_op.create_index('ix_mapping_value_scan_kind_status', ['scan_id', 'kind', 'status'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('mapping_value', schema=None) as batch_op:
        batch_op.drop_index('ix_mapping_value_scan_kind_status')

    op.drop_table('mapping_value')
    with op.batch_alter_table('mapping_scan', schema=None) as batch_op:
        batch_op.drop_index('ix_mapping_scan_company_id_desc')

    op.drop_table('mapping_scan')
    op.drop_table('mapping_override')

